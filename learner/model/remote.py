"""Generate fixes on an OpenAI-compatible server (vLLM, llama.cpp's server, Ollama) instead of in-process.

A team, or a user with a GPU box, serves a bigger base model and every route's adapter from one
engine; this module is the client. It speaks the same interface the fix sources use on a local
:class:`~learner.model.runtime.ModelRuntime` (``generate`` / ``generate_batch``, returning
:class:`~learner.model.runtime.Generation`), so prompts, answer parsing, best-of-N and the verifier
are shared, never copied.

Routing stays routing: vLLM serves each LoRA adapter as a model of its own name, so a request for
route R asks for the model named R (``sleepy-coder adapters publish`` registers them under the
route names), and the base model when the server has no adapter for R. Averaging adapters is
never a fallback.

Failures must never hang the editor: one request has ``backend_timeout_s`` in all; a server that
refused a connection or timed out is not asked again for :data:`DOWN_FOR_S` seconds (each call in
that window fails at once with the same one-line :class:`BackendUnavailable`), and nothing is
retried. Requests stream, so a cancelled fix closes the connection (vLLM then aborts the request)
and the time to the first token is measured.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.model.runtime import Generation, GenerationError

#: How the ``backend`` setting names an OpenAI-compatible server.
OPENAI_PREFIX = "openai:"
#: The API key, when the server wants one (vLLM's ``--api-key``); never stored in settings or records.
API_KEY_ENV = "SLEEPY_CODER_API_KEY"
#: After a connection failure or timeout the server is not asked again for this long.
DOWN_FOR_S = 30.0
#: How long the server's list of models (base and adapters) is trusted before it is asked again.
MODELS_TTL_S = 30.0


class BackendError(SleepyCoderError):
    """The ``backend`` setting is not ``local`` or ``openai:<url>``, or the server's answers make no sense."""


class BackendUnavailable(GenerationError):
    """The server could not be reached, timed out, or refused the request; ``str()`` is one line."""


class ModelNotServed(BackendUnavailable):
    """The server answered 404 for the model asked (an adapter unloaded since the model list was read)."""


def backend_url(value: str) -> str:
    """The base URL of ``backend = "openai:<url>"`` (``http(s)://host[:port]/path``, no trailing slash)."""
    text = value.strip()
    if not text.lower().startswith(OPENAI_PREFIX):
        raise BackendError(f"unknown backend {value!r}; use 'local' or 'openai:http://HOST:PORT/v1'")
    url = text[len(OPENAI_PREFIX) :].strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendError(f"backend {value!r} needs an http(s) URL, e.g. openai:http://127.0.0.1:8000/v1")
    return url


@dataclass(frozen=True)
class ServedModels:
    """What the server serves: its base model(s) and the LoRA adapters loaded on top (vLLM's ``parent``)."""

    bases: tuple[str, ...]
    adapters: frozenset[str]

    @classmethod
    def from_listing(cls, listing: Any) -> ServedModels:
        """Read ``GET /models`` (OpenAI's ``{"data": [{"id": ...}]}``; vLLM adds ``parent`` to adapters)."""
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise BackendError("the server's /models answer has no model list")
        bases: list[str] = []
        adapters: set[str] = set()
        for entry in data:
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                continue
            (adapters.add(entry["id"]) if entry.get("parent") else bases.append(entry["id"]))
        return cls(tuple(bases), frozenset(adapters))


@dataclass
class _Streamed:
    """One choice of a streamed answer, as it arrives."""

    text: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    chunks: int = 0


class OpenAIRuntime:
    """Fix generation on an OpenAI-compatible server; thread-safe (requests run concurrently)."""

    def __init__(self, settings: Settings) -> None:
        self.url = backend_url(settings.backend)
        self.timeout_s = max(1.0, settings.backend_timeout_s)
        self._wanted_base = settings.backend_model.strip()
        key = os.environ.get(API_KEY_ENV, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        timeout = httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s))
        # trust_env=False: the user's code goes to this URL only, never through a proxy from the environment.
        self._client = httpx.Client(headers=headers, timeout=timeout, trust_env=False)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._down_reason = ""
        self._models: ServedModels | None = None
        self._models_at = 0.0
        self.base_model = self._resolve_base(self.served_models(refresh=True))

    @property
    def model_name(self) -> str:
        """Recorded with each fix: the server's base model, so records say which model answered."""
        return f"{OPENAI_PREFIX}{self.base_model}"

    # ----- what the server serves -----
    def served_models(self, *, refresh: bool = False) -> ServedModels:
        """The server's models, asked at most every :data:`MODELS_TTL_S` seconds unless ``refresh``."""
        with self._lock:
            fresh = self._models is not None and time.monotonic() - self._models_at < MODELS_TTL_S
            if fresh and not refresh and self._models is not None:
                return self._models
        listing = self._request_json("GET", "/models")
        models = ServedModels.from_listing(listing)
        with self._lock:
            self._models, self._models_at = models, time.monotonic()
        return models

    def _resolve_base(self, models: ServedModels) -> str:
        if self._wanted_base:
            if self._wanted_base not in models.bases:
                known = ", ".join(models.bases) or "none"
                raise BackendError(f"the server at {self.url} does not serve {self._wanted_base!r} (it serves {known})")
            return self._wanted_base
        if len(models.bases) == 1:
            return models.bases[0]
        if not models.bases:
            raise BackendError(f"the server at {self.url} lists no base model")
        raise BackendError(
            f"the server at {self.url} serves several models ({', '.join(models.bases)}); set backend_model"
        )

    def model_for(self, route: str | None) -> tuple[str, str | None]:
        """The model to ask for ``route`` and why it is not the route's own adapter (None when it is)."""
        if route is None:
            return self.base_model, None
        if route in self.served_models().adapters:
            return route, None
        return self.base_model, f"the server at {self.url} has no adapter for route {route}; its base model answered"

    def attach_adapters(self, adapters: object | None) -> None:
        """Detaching is a no-op (the base model is the server's); adapters live on the server."""
        if adapters is not None:
            raise BackendError(
                f"adapters are served by {self.url}, not loaded here; publish them with `sleepy-coder adapters publish`"
            )

    # ----- generation (the ModelRuntime interface the fix sources use) -----
    def generate(
        self,
        messages: list[dict[str, str]],
        *,
        max_new_tokens: int,
        route: str | None = None,
        prompt_lookup: bool = True,
        temperature: float = 0.0,
        seed: int | None = None,
        stop_event: threading.Event | None = None,
    ) -> Generation:
        """One answer, greedy when ``temperature`` is 0 (``prompt_lookup`` is the server's business)."""
        return self._complete(messages, 1, max_new_tokens, route, temperature, seed, stop_event)[0]

    def generate_batch(
        self,
        messages: list[dict[str, str]],
        n: int,
        *,
        max_new_tokens: int,
        route: str | None = None,
        temperature: float = 0.7,
        seed: int | None = None,
        stop_event: threading.Event | None = None,
        greedy_first: bool = True,
    ) -> list[Generation]:
        """``n`` answers in one request (``n``: the server shares the prompt's prefill across them);
        with ``greedy_first`` the first is a separate greedy request, as the local runtime's first row."""
        if n < 1:
            raise GenerationError(f"asked for {n} candidates; at least one is needed")
        answers: list[Generation] = []
        if greedy_first:
            answers += self._complete(messages, 1, max_new_tokens, route, 0.0, seed, stop_event)
        if len(answers) < n:
            answers += self._complete(messages, n - len(answers), max_new_tokens, route, temperature, seed, stop_event)
        return answers

    def _complete(
        self,
        messages: list[dict[str, str]],
        n: int,
        max_new_tokens: int,
        route: str | None,
        temperature: float,
        seed: int | None,
        stop_event: threading.Event | None,
    ) -> list[Generation]:
        model, notice = self.model_for(route)
        try:
            return self._complete_with(model, notice, messages, n, max_new_tokens, temperature, seed, stop_event)
        except ModelNotServed:
            if model == self.base_model:
                raise
            self.served_models(refresh=True)  # the route's adapter went away: its base model answers
            notice = f"the server at {self.url} no longer serves route {route}'s adapter; its base model answered"
            return self._complete_with(
                self.base_model, notice, messages, n, max_new_tokens, temperature, seed, stop_event
            )

    def _complete_with(
        self,
        model: str,
        notice: str | None,
        messages: list[dict[str, str]],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int | None,
        stop_event: threading.Event | None,
    ) -> list[Generation]:
        # Every sampling knob is sent: otherwise the server fills them from the model's
        # generation_config (Qwen ships repetition_penalty=1.05 and top_k=20), as transformers would.
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "n": n,
            "temperature": temperature,
            "top_p": 0.95 if temperature > 0 else 1.0,
            "top_k": -1,
            "repetition_penalty": 1.0,
            "logprobs": True,
            "stream": True,
        }
        if seed is not None:
            body["seed"] = seed
        started = time.perf_counter()
        first_token: float | None = None
        choices: dict[int, _Streamed] = {}
        for chunk in self._stream("/chat/completions", body, stop_event):
            for choice in chunk.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                streamed = choices.setdefault(int(choice.get("index") or 0), _Streamed())
                content = (choice.get("delta") or {}).get("content")
                if content:
                    if first_token is None:
                        first_token = time.perf_counter() - started
                    streamed.text.append(content)
                    streamed.chunks += 1
                for entry in (choice.get("logprobs") or {}).get("content") or []:
                    if isinstance(entry, dict) and isinstance(entry.get("logprob"), int | float):
                        streamed.logprobs.append(float(entry["logprob"]))
        seconds = time.perf_counter() - started
        version = model if model != self.base_model else None
        answers = []
        for index in sorted(choices):
            streamed = choices[index]
            tokens = len(streamed.logprobs) or streamed.chunks
            mean = sum(streamed.logprobs) / len(streamed.logprobs) if streamed.logprobs else None
            text = "".join(streamed.text)
            answers.append(Generation(text, tokens, seconds, version, mean, notice=notice, first_token_s=first_token))
        if not answers:
            raise BackendUnavailable(f"the server at {self.url} sent no answer")
        return answers

    # ----- HTTP -----
    def _check_up(self) -> None:
        if time.monotonic() < self._down_until:
            raise BackendUnavailable(self._down_reason)

    def _mark_down(self, what: str) -> BackendUnavailable:
        reason = (
            f"the model server at {self.url} {what}; rustc's suggestions only (not asked again for {DOWN_FOR_S:.0f} s)"
        )
        self._down_reason, self._down_until = reason, time.monotonic() + DOWN_FOR_S
        return BackendUnavailable(reason)

    def _unreachable(self, exc: httpx.HTTPError) -> BackendUnavailable:
        """A transport failure (timeout, refused connection) as the one message, marking the server down."""
        if isinstance(exc, httpx.TimeoutException):
            return self._mark_down(f"did not answer within {self.timeout_s:.0f} s")
        return self._mark_down(f"is unreachable ({_reason(exc)})")

    def _request_json(self, method: str, path: str, body: Any = None) -> Any:
        self._check_up()
        try:
            response = self._client.request(method, self.url + path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        _raise_for_status(response, self.url + path)
        try:
            return response.json()
        except ValueError:
            raise BackendError(f"{self.url}{path} did not answer JSON") from None

    def _stream(self, path: str, body: Any, stop_event: threading.Event | None) -> Iterator[dict[str, Any]]:
        """The server-sent events of one streamed request; stops (closing the connection) on ``stop_event``."""
        self._check_up()
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._client.stream("POST", self.url + path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(response, self.url + path)
                for line in response.iter_lines():
                    if stop_event is not None and stop_event.is_set():
                        return
                    if time.monotonic() > deadline:
                        raise self._mark_down(f"did not finish within {self.timeout_s:.0f} s")
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError:
                        raise BackendError(f"{self.url}{path} sent an event that is not JSON: {data[:80]!r}") from None
                    if isinstance(event, dict):
                        if "error" in event:
                            raise BackendUnavailable(f"the model server refused the request: {_message(event)}")
                        yield event
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def close(self) -> None:
        self._client.close()


def _raise_for_status(response: httpx.Response, url: str) -> None:
    """A refused request is one line with the server's own message (a missing model, a prompt too long)."""
    if response.status_code < 400:
        return
    try:
        detail = _message(response.json())
    except ValueError:
        detail = response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
    kind = ModelNotServed if response.status_code == 404 else BackendUnavailable
    raise kind(f"the model server refused {url} (HTTP {response.status_code}): {detail}")


def _message(payload: Any) -> str:
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        error = error.get("message") or error
    text = str(error).strip()
    return text.splitlines()[0] if text else "no detail"


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
