"""Load a causal language model once and generate fixes with it.

This is the only module that imports transformers for inference; everything else talks to a
:class:`ModelRuntime`. Three things matter for a fix assistant and shape the API:

* Prompts: :meth:`ModelRuntime.render_prompt` is the one place the chat template is applied;
  training reuses it so the prompts the model learns on are the prompts it is asked at.
* Speed: a fix mostly copies its input, so prompt-lookup decoding (draft tokens taken from the
  prompt, checked by one forward pass) multiplies tokens/s on CPU at no quality cost.
* Adapters: the learner produces one adapter per error route. A :class:`RouteAdapters` object
  is attached to the runtime and switched per call, under the same lock as generation, so a
  request never sees another request's adapter.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.model.assets import EmbeddedModelError, prepare_embedded_model
from learner.progress import Progress

if TYPE_CHECKING:
    import torch

#: Draft length for prompt-lookup decoding; 10 measured well on code fixes.
PROMPT_LOOKUP_TOKENS = 10


class ModelLoadError(SleepyCoderError):
    """The model could not be loaded; the message is one line a user can act on."""


class GenerationError(SleepyCoderError):
    """One generation failed (prompt too long for the model, out of memory, ...); one-line message."""


@dataclass(frozen=True)
class Generation:
    """One model answer: the text, how many tokens it took, and which adapter produced it."""

    text: str
    new_tokens: int
    seconds: float
    adapter_version: str | None
    #: The model's own mean log-probability per generated token (raw logits), when computed.
    mean_logprob: float | None = None
    #: Something the user should know about this answer (a server that had no adapter for the route).
    notice: str | None = None
    #: Seconds until the first token arrived, where the backend streams (the OpenAI-compatible one).
    first_token_s: float | None = None


class RouteAdapters(Protocol):
    """Per-route adapters applied to the runtime's model (implemented by the share module)."""

    def activate(self, route: str | None) -> str | None:
        """Apply ``route``'s adapter to the model; return its version, or None for the base model.

        ``activate(None)`` must restore the base model exactly.
        """
        ...


class ModelRuntime:
    """A loaded model and tokenizer, safe to share between threads (generation is serialised)."""

    def __init__(self, model_name: str, tokenizer: Any, model: Any, device: str) -> None:
        self.model_name = model_name
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        #: Held for a whole generation: the model (and its active adapter) serves one call at a time.
        self._lock = threading.Lock()
        #: Fast tokenizers raise "Already borrowed" when used from two threads at once; this lock is
        #: separate so counting tokens never waits for a generation to finish.
        self._tokenizer_lock = threading.Lock()
        self._context_length: int | None = getattr(model.config, "max_position_embeddings", None)
        self._adapters: RouteAdapters | None = None
        self._eos_ids = _eos_token_ids(tokenizer, model)
        pad = tokenizer.pad_token_id
        self._pad_id: int = pad if pad is not None else self._eos_ids[0]

    # ----- prompts -----
    def render_prompt(self, messages: list[dict[str, str]]) -> str:
        """The exact text the model sees for ``messages``, ending where the assistant answers."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)

    def token_count(self, text: str) -> int:
        with self._tokenizer_lock:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ----- adapters -----
    def attach_adapters(self, adapters: RouteAdapters | None) -> None:
        """Use ``adapters`` for later calls (None detaches them; the base model is restored)."""
        with self._lock:
            if self._adapters is not None:
                self._adapters.activate(None)
            self._adapters = adapters

    # ----- generation -----
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
        """Answer ``messages``: greedy when ``temperature`` is 0, else sampled (reproducible with ``seed``).

        ``route`` selects the attached adapter for this call only; ``stop_event`` ends generation
        early when set (the editor cancelled the request) and the partial text is returned.
        """
        import torch

        encoded, prompt_tokens = self._encode(messages, max_new_tokens)
        input_ids = encoded["input_ids"].to(self.device)
        attention_mask = encoded["attention_mask"].to(self.device)
        options = self._generation_options(max_new_tokens, prompt_lookup, temperature, stop_event)

        with self._generating(route) as version:
            started = time.perf_counter()
            with torch.inference_mode(), _seeded(seed, self.device):
                output = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **options)
            seconds = time.perf_counter() - started

        new_ids = output[0, prompt_tokens:]
        with self._tokenizer_lock:
            text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        return Generation(text=text, new_tokens=int(new_ids.shape[0]), seconds=seconds, adapter_version=version)

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
        """``n`` answers from one prefill: the first greedy (unless ``greedy_first`` is false), the
        others sampled at ``temperature``.

        The prompt is run through the model once; its KV cache is then repeated across the batch,
        so ``n`` candidates cost one prefill plus ``n``-wide decoding steps (never ``n`` prefills).
        Each sequence stops at its own end of sequence. Prompt lookup needs a batch of one, so it
        is not used here (:meth:`generate` keeps it for single answers). Each answer carries the
        model's mean log-probability per token, for ranking.
        """
        import torch
        from transformers import DynamicCache, LogitsProcessorList

        if n < 1:
            raise GenerationError(f"asked for {n} candidates; at least one is needed")
        encoded, prompt_tokens = self._encode(messages, max_new_tokens)
        input_ids = encoded["input_ids"].to(self.device)
        options = self._generation_options(max_new_tokens, False, max(temperature, 1e-5), stop_event)
        if greedy_first:
            options["logits_processor"] = LogitsProcessorList([_first_row_greedy()])
        options.update(return_dict_in_generate=True, output_logits=True)

        with self._generating(route) as version:
            started = time.perf_counter()
            with torch.inference_mode(), _seeded(seed, self.device):
                cache = DynamicCache(config=self.model.config)
                if prompt_tokens > 1:  # all but the last token: generate feeds that one itself
                    self.model(input_ids=input_ids[:, :-1], cache=cache, use_cache=True)
                cache.batch_repeat_interleave(n)
                output = self.model.generate(
                    input_ids=input_ids.repeat(n, 1),
                    attention_mask=torch.ones((n, prompt_tokens), dtype=torch.long, device=self.device),
                    cache=cache,
                    **options,
                )
            seconds = time.perf_counter() - started

        new_ids = output.sequences[:, prompt_tokens:]
        logprobs = torch.stack(list(output.logits), dim=1).float().log_softmax(dim=-1)
        chosen = logprobs.gather(-1, new_ids.unsqueeze(-1)).squeeze(-1)
        answers = []
        for row in range(n):
            ids = new_ids[row].tolist()
            length = next((i + 1 for i, t in enumerate(ids) if t in self._eos_ids), len(ids))
            with self._tokenizer_lock:
                text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
            mean = float(chosen[row, :length].mean()) if length else None
            answers.append(Generation(text, length, seconds, version, mean))
        return answers

    def _encode(self, messages: list[dict[str, str]], max_new_tokens: int) -> tuple[Any, int]:
        """The prompt's tokens and their count; a prompt the model's context cannot hold is refused."""
        prompt = self.render_prompt(messages)
        with self._tokenizer_lock:
            encoded = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        prompt_tokens = int(encoded["input_ids"].shape[1])
        if self._context_length is not None and prompt_tokens + max_new_tokens > self._context_length:
            raise GenerationError(
                f"the prompt has {prompt_tokens} tokens; with {max_new_tokens} new tokens it exceeds "
                f"the model's context of {self._context_length}"
            )
        return encoded, prompt_tokens

    @contextmanager
    def _generating(self, route: str | None) -> Iterator[str | None]:
        """Hold the model for one generation with ``route``'s adapter (yields its version); the base
        model is restored after, and a torch failure becomes a one-line :class:`GenerationError`."""
        with self._lock:
            adapters = self._adapters
            version = adapters.activate(route) if adapters is not None else None
            try:
                yield version
            except (RuntimeError, ValueError) as exc:  # torch OOM and shape errors, bad generation options
                raise GenerationError(f"generation failed: {_first_line(exc)}") from exc
            finally:
                if adapters is not None:
                    adapters.activate(None)

    def _generation_options(
        self,
        max_new_tokens: int,
        prompt_lookup: bool,
        temperature: float,
        stop_event: threading.Event | None,
    ) -> dict[str, Any]:
        from transformers import StoppingCriteriaList

        # Every sampling knob is set explicitly: otherwise transformers fills them from the model's
        # generation_config (Qwen ships repetition_penalty=1.05, which fights copying code).
        options: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "eos_token_id": self._eos_ids,
            "pad_token_id": self._pad_id,
            "repetition_penalty": 1.0,
        }
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_p=0.95, top_k=0)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if prompt_lookup:
            options["prompt_lookup_num_tokens"] = PROMPT_LOOKUP_TOKENS
        if stop_event is not None:
            options["stopping_criteria"] = StoppingCriteriaList([_stop_on_event(stop_event)])
        return options


def load_runtime(settings: Settings, progress: Progress | None = None) -> ModelRuntime:
    """Load ``settings.model`` on ``settings.device``; any failure is a one-line :class:`ModelLoadError`."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ModelLoadError(
            f"the model tier is not installed ({exc.name} is missing); "
            "install it with `pip install 'sleepy-coder[ml,model]'`"
        ) from exc

    # Our own progress callback reports loading; transformers' tqdm bars would corrupt the
    # JSON on stdout of `fix --json` and the LSP server's stdio, so they are turned off.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device = _resolve_device(settings.device)
    source, local_only = _model_source(settings, progress)
    if progress is not None:
        progress(f"Loading {settings.model} on {device}", None)
    _configure_threads(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=_dtype_for(device), local_files_only=local_only)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... for bad folders
        raise ModelLoadError(f"could not load model {settings.model!r}: {_first_line(exc)}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(f"model {settings.model!r} has no chat template; use an instruct (chat) model")
    try:
        model.to(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        raise ModelLoadError(f"could not move model {settings.model!r} to {device}: {_first_line(exc)}") from exc
    model.eval()
    if settings.share_weights and device == "cpu" and Path(source).is_dir():
        # One copy in memory for the server and the learner: both map the checkpoint file.
        from learner.model.shared_weights import map_checkpoint

        map_checkpoint(model, Path(source))
    if progress is not None:
        progress(f"{settings.model} is ready", 1.0)
    return ModelRuntime(settings.model, tokenizer, model, device)


def _model_source(settings: Settings, progress: Progress | None) -> tuple[str, bool]:
    """Where to load from and whether to stay offline (embedded and local folders never need a network)."""
    if settings.uses_embedded_model:
        try:
            return str(prepare_embedded_model(settings, progress)), True
        except EmbeddedModelError as exc:
            raise ModelLoadError(str(exc)) from exc
        except Exception as exc:  # conversion failures (disk full, broken install) stay one line too
            raise ModelLoadError(f"could not prepare the embedded model: {_first_line(exc)}") from exc
    path = Path(settings.model).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists():
        raise ModelLoadError(f"model {settings.model!r} is a file; give the folder that holds the model")
    if path.is_absolute() or settings.model.startswith((".", "~")):
        raise ModelLoadError(f"model folder {settings.model!r} does not exist")
    # A hub id: transformers uses its cache, and the network only when the user has one.
    return settings.model, False


def _resolve_device(requested: str) -> str:
    import torch

    wanted = requested.strip().lower() or "auto"
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {requested!r} was requested but CUDA is not available")
    if wanted == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("device 'mps' was requested but Apple MPS is not available")
    if wanted not in ("cpu", "mps") and not wanted.startswith("cuda"):
        raise ModelLoadError(f"unknown device {requested!r}; use cpu, cuda, mps or auto")
    return wanted


def _dtype_for(device: str) -> torch.dtype:
    """bf16 everywhere it works: on CPU it measured faster than fp32 and halves memory."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16


def _configure_threads(device: str) -> None:
    """One thread per physical core for CPU inference, unless the user chose via OMP_NUM_THREADS."""
    if device != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return
    import psutil
    import torch

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    torch.set_num_threads(max(1, cores))


def _eos_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """Every id that ends an answer: the tokenizer's eos, ChatML's end markers, the model's own."""
    ids: list[int] = []
    candidates: list[Any] = [tokenizer.eos_token_id]
    vocab = tokenizer.get_vocab()
    candidates.extend(vocab[token] for token in ("<|im_end|>", "<|endoftext|>") if token in vocab)
    configured = getattr(model.generation_config, "eos_token_id", None)
    candidates.extend(configured if isinstance(configured, list) else [configured])
    for candidate in candidates:
        if isinstance(candidate, int) and candidate >= 0 and candidate not in ids:
            ids.append(candidate)
    if not ids:
        raise ModelLoadError("the model's tokenizer defines no end-of-sequence token")
    return ids


def _first_row_greedy() -> Any:
    """A logits processor that leaves only the best token in row 0, so a sampled batch keeps one
    greedy answer (the one a single-answer call would give) beside its samples."""
    import torch
    from transformers import LogitsProcessor

    class _FirstRowGreedy(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            out = scores.clone()  # the raw logits kept for log-probabilities must stay untouched
            best = out[0].argmax()
            out[0] = torch.full_like(out[0], float("-inf"))
            out[0, best] = 0.0
            return out  # type: ignore[return-value]

    return _FirstRowGreedy()


def _stop_on_event(event: threading.Event) -> Any:
    import torch
    from transformers import StoppingCriteria

    class _StopOnEvent(StoppingCriteria):
        """Stops every sequence as soon as ``event`` is set (checked once per decoding step)."""

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return _StopOnEvent()


@contextmanager
def _seeded(seed: int | None, device: str) -> Iterator[None]:
    """Seed torch for one sampled call without disturbing the caller's global RNG state."""
    if seed is None:
        yield
        return
    import torch

    devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
