"""Settings and paths: the one place that knows where things live and which knobs exist.

Everything else receives a :class:`Settings` object instead of reading the environment
or computing paths itself. Paths come from platformdirs; ``SLEEPY_CODER_HOME`` moves all
of them under one folder (tests and CI use it so they never touch the user's real data).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from learner.files import private_dir

APP_NAME = "sleepy-coder"

#: The embedded default model (from the ``model`` extra, loaded offline): the 1.5B, chosen by
#: measurement over the 0.5B (README, "The model").
EMBEDDED_MODEL_ID = "embedded:qwen2.5-coder-1.5b-instruct"
#: The small embedded option (the ``model-0-5b`` extra), for machines without 4 GB to spare.
SMALL_MODEL_ID = "embedded:qwen2.5-coder-0.5b-instruct"
#: The hub id of the default model, for users with a network who prefer the original weights.
HUB_MODEL_ID = "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def _home_override() -> Path | None:
    value = os.environ.get("SLEEPY_CODER_HOME")
    return Path(value).expanduser() if value else None


def default_data_dir() -> Path:
    """Where the store, adapters and logs live (user data dir, or $SLEEPY_CODER_HOME/data)."""
    home = _home_override()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def default_cache_dir() -> Path:
    """Re-creatable things: the bf16 model copy, cargo target dirs, scratch crates."""
    home = _home_override()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP_NAME))


#: Settings a parent process hands to a child it starts (JSON of :meth:`Settings.as_mapping`).
SETTINGS_ENV = "SLEEPY_CODER_SETTINGS"

#: Where the evaluation's case files are, when not beside the checkout.
BENCH_ENV = "SLEEPY_CODER_BENCH_DIR"


def bench_dir() -> Path | None:
    """The evaluation cases: ``$SLEEPY_CODER_BENCH_DIR``, else ``../shared/bench`` beside the checkout; None if absent.

    The learner reads it too, to make sure it never trains on a case (:mod:`learner.learn.benchmark`).
    """
    env = os.environ.get(BENCH_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "bench")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@dataclass
class Settings:
    """Every user-facing knob, with its default. The editor passes these as initializationOptions.

    Field names are the camelCase-free spelling of the editor settings (``maxNewTokens`` in the
    editor is ``max_new_tokens`` here); :meth:`from_mapping` accepts either spelling.
    """

    #: ``embedded:...`` for the packaged default, else any transformers model id or local folder.
    model: str = EMBEDDED_MODEL_ID
    #: ``cpu``, ``cuda``, ``mps`` or ``auto``.
    device: str = "cpu"
    #: Map the model's checkpoint file copy-on-write instead of holding a private copy, so the
    #: server and the idle learner share one copy of the weights in memory (CPU, safetensors).
    share_weights: bool = True
    #: Where fixes are generated: ``local`` (``model`` in this process) or ``openai:<base url>``, an
    #: OpenAI-compatible server (vLLM, llama.cpp, Ollama), e.g. ``openai:http://127.0.0.1:8000/v1``.
    #: The code around each error is sent to that URL and nowhere else; the learner still trains
    #: locally (``learn`` on a GPU box writes the adapters the server loads, README "For teams").
    backend: str = "local"
    #: The base model's name on the server ("": the server's only base model). A route's requests ask
    #: for the model named like the route (its LoRA adapter), the base model when the server has none.
    backend_model: str = ""
    #: Seconds one request to the server may take; past it, that fix falls back to rustc's suggestions.
    backend_timeout_s: float = 60.0
    #: After each promotion, the idle learner makes the backend server serve the new routes
    #: (``adapters publish``); the server must see this data folder's ``served/`` at the same path.
    publish_adapters: bool = False
    max_new_tokens: int = 384
    #: How many model attempts per error, each seeing the compiler's answer to the last one.
    attempts: int = 3
    #: Candidates per attempt: the greedy answer (with prompt lookup) and, when the compiler refuses
    #: it, one batched generation (one prefill) of the rest as samples, each verified, the smallest
    #: verified fix offered first. 4 by measurement (README, "Benchmarks"): +14 of 110 shared cases.
    candidates: int = 4
    #: Sampling temperature of the extra candidates.
    candidate_temperature: float = 0.7
    #: Seed of the extra candidates (with the attempt number), so a run can be repeated exactly
    #: and the benchmarks can draw several independent sets of candidates.
    candidate_seed: int = 0
    #: Candidates compiled at once, each in its own scratch copy of the crate.
    verify_jobs: int = 2
    #: How the model answers: ``item`` (the corrected items, what adapters are trained on),
    #: ``search-replace`` (only the changed lines) or ``line-range`` (numbered line ranges). See
    #: README, "Benchmarks", for the comparison (items won both).
    answer_format: str = "item"
    #: Compute model fixes in the background after each check, for the errors nearest where you
    #: work that rustc has no fix for, so the menu shows a verified fix instead of a placeholder
    #: (cancelled by any edit, and whenever you ask for a fix yourself).
    background_fixes: bool = True
    #: Offer model fixes at all (off: rustc's own suggestions only).
    model_enabled: bool = True
    #: Publish the server's own cargo diagnostics (off when rust-analyzer already shows them).
    publish_diagnostics: bool = True
    #: Record outcomes and let the learner run when the machine is idle.
    learning_enabled: bool = True
    #: Outcome records older than this are deleted (0 keeps them for ever).
    retention_days: int = 90
    #: Glob patterns of files whose code is never recorded.
    exclude_globs: list[str] = field(default_factory=list)
    #: Seconds a shown fix may stay unapplied before it is recorded as ignored.
    ignore_timeout_s: float = 600.0
    #: Seconds an accepted fix is watched for the user's edits (``edited``/``reverted``); untouched
    #: by then, the accept stands.
    edit_window_s: float = 600.0
    #: Minutes without editor activity before the learner counts the machine as idle.
    idle_minutes: float = 10.0
    #: The idle learner's budget per night: optimiser steps per route and phase, and training
    #: examples per route (the user's fixes first, then mutations of their crates and the docs).
    learn_steps: int = 100
    learn_examples: int = 64
    #: Mutate the installed Rust documentation's examples too (off: only your fixes and crates).
    learn_from_docs: bool = True
    #: A route is learned at night when the day brought at least this many new accepted or edited
    #: fixes of it. One is enough: the night also trains on mutations of your crates and replays
    #: your older fixes, and the gate keeps the result only when held-out evidence says it helps
    #: (waiting for four starved the first nights of a user making a handful of errors a day).
    learn_min_new_fixes: int = 1
    #: Seconds one cargo check may take before it is abandoned.
    check_timeout_s: float = 300.0
    #: Let sleepy-coder's own cargo runs reach the network (crates index, git dependencies). Off:
    #: every check runs ``--offline``, so fetching is the user's ``cargo fetch``, never ours.
    cargo_network: bool = False
    #: Run cargo on this workspace at all. Checking a crate runs its build scripts and proc macros,
    #: as rust-analyzer does; VS Code's workspace trust keeps the extension off in untrusted folders,
    #: and this setting (``trusted = false``) does the same for other editors.
    trusted: bool = True
    data_dir: Path = field(default_factory=default_data_dir)
    cache_dir: Path = field(default_factory=default_cache_dir)

    # ----- derived paths (one place for each) -----
    @property
    def db_path(self) -> Path:
        return self.data_dir / "sleepy-coder.sqlite3"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def learner_log(self) -> Path:
        """The learner daemon's log (the server points the user at it when a cycle fails)."""
        return self.logs_dir / "learner.log"

    @property
    def learner_lock(self) -> Path:
        """Held by the running learner, so a second one in the same data home refuses to start."""
        return self.data_dir / "learner.lock"

    @property
    def training_dir(self) -> Path:
        """Derived training sets and checkpoints (deleted with ``data forget``)."""
        return self.data_dir / "training"

    @property
    def practice_dir(self) -> Path:
        """Held-out practice mutations of the user's crates, per route: the gate's evidence, never trained on."""
        return self.training_dir / "practice"

    @property
    def reserved_sites_path(self) -> Path:
        """Items an evaluation reserves in the user's crates: never mutated for training or practice."""
        return self.data_dir / "reserved-sites.json"

    @property
    def served_dir(self) -> Path:
        """The active routes as PEFT LoRA folders for a vLLM server (``adapters publish``)."""
        return self.data_dir / "served"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def models_dir(self) -> Path:
        """Prepared model copies (the bf16 conversion of the embedded GGUF)."""
        return self.cache_dir / "models"

    @property
    def targets_dir(self) -> Path:
        """Persistent cargo target dirs, one per crate, so re-checks are incremental."""
        return self.cache_dir / "targets"

    @property
    def scratch_dir(self) -> Path:
        """Scratch copies of crates where candidate fixes are compiled."""
        return self.cache_dir / "scratch"

    @property
    def uses_embedded_model(self) -> bool:
        return self.model.startswith("embedded:")

    @property
    def uses_remote_backend(self) -> bool:
        """Fixes come from an OpenAI-compatible server (``backend = "openai:<url>"``), not ``model``."""
        return self.backend.strip().lower() != "local"

    def ensure_dirs(self) -> None:
        """Create the folders, private to the user (0700): they hold code and what was learned from it."""
        for path in (self.data_dir, self.cache_dir, self.adapters_dir, self.logs_dir, self.training_dir):
            private_dir(path)

    def as_mapping(self) -> dict[str, Any]:
        """Every knob as JSON-ready values (what :meth:`from_mapping` reads back)."""
        return {f.name: str(v) if isinstance(v := getattr(self, f.name), Path) else v for f in dataclasses.fields(self)}

    @classmethod
    def inherited(cls) -> Settings:
        """The settings a parent process handed down in ``$SLEEPY_CODER_SETTINGS`` (JSON), else the defaults.

        The editor's server starts the learner with its own settings this way, so a custom data
        folder or model reaches the child instead of the defaults.
        """
        text = os.environ.get(SETTINGS_ENV)
        if not text:
            return cls()
        try:
            values = json.loads(text)
        except ValueError:
            return cls()
        return cls.from_mapping(values if isinstance(values, dict) else None)

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None, base: Settings | None = None) -> Settings:
        """Build settings from editor options (camelCase or snake_case); unknown keys are ignored."""
        current = base if base is not None else cls()
        if not values:
            return current
        known = {f.name: f for f in dataclasses.fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            name = _snake(key)
            if name not in known or value is None:
                continue
            if name in ("data_dir", "cache_dir"):
                value = Path(str(value)).expanduser()
            elif name == "exclude_globs":
                value = [str(v) for v in value]
            else:
                default = getattr(current, name)
                value = _coerce(value, type(default))
            changes[name] = value
        return dataclasses.replace(current, **changes)


def _snake(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper():
            out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out).replace("-", "_")


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if kind in (int, float, str):
        return kind(value)
    return value
