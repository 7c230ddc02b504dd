"""The palette commands' answers (``sleepy-coder.status``, ``learnNow``, ``forgetData``,
``openReport``): plain functions over the store and settings, run on a worker thread.

Their JSON shapes are what the clients parse (``vscode-extension/src/common/status.ts`` and
``neovim/lua/sleepy_coder/init.lua``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learner.config import SETTINGS_ENV, Settings
from learner.learn.cycle_report import describe_cycle, newest_report
from learner.learn.forget import forget as forget_data
from learner.model.handle import RuntimeHandle
from learner.store import Store

#: ``python -m learner`` arguments that run one learning cycle now (not waiting for idle time),
#: detached from the server.
LEARN_ARGS = ("learn", "--daemon", "--once", "--now")
#: A learner that dies within this many seconds is reported as failed, with its log.
LEARN_STARTUP_S = 1.5


_MODEL_STATES = {
    "off": "model fixes are off (modelEnabled = false)",
    "not-loaded": "not loaded yet (it loads on the first model fix)",
    "loading": "loading",
    "ready": "ready",
}


def status(settings: Settings, runtime: RuntimeHandle, store: Store | None) -> dict[str, Any]:
    """``{model, modelState, modelError, routesWithAdapters, learner: {state, lastCycle, lastOutcome},
    store: counts, summary}``; ``summary`` is the same as readable lines, for clients to show as is."""
    learner: dict[str, Any] = {"state": "off" if not settings.learning_enabled else "idle", "lastCycle": None}
    routes: list[str] = []
    counts: dict[str, int] = {}
    said = "no cycle yet"
    if store is None:
        learner["state"] = "unavailable"
    else:
        routes = sorted(store.active_versions(settings.model))  # adapters of another base model are not used
        counts = store.counts()
        cycles = store.cycles(1)
        if cycles:
            cycle = cycles[0]
            if cycle.finished_at is None and settings.learning_enabled:
                learner["state"] = cycle.state
            when = cycle.finished_at or cycle.started_at
            learner["lastCycle"] = when.isoformat()
            learner["lastOutcome"] = describe_cycle(cycle.outcome, cycle.details)
            said = f"last cycle {when:%Y-%m-%d %H:%M} UTC: {learner['lastOutcome']}"
    model_state = _MODEL_STATES.get(runtime.state, runtime.state)
    if runtime.state == "failed":
        model_state = f"unavailable: {runtime.error}"
    recorded = (
        f"Recorded: {counts.get('offers', 0)} fixes offered; {counts.get('accepted', 0)} accepted, "
        f"{counts.get('edited', 0)} edited, {counts.get('reverted', 0)} reverted, "
        f"{counts.get('rejected', 0)} rejected, {counts.get('ignored', 0)} ignored"
        if store is not None
        else "Recorded: nothing (the feedback store cannot be opened)"
    )
    # With a backend server the model is the server's: say where fixes come from.
    model = f"{settings.backend} (server)" if settings.uses_remote_backend else settings.model
    summary = [
        f"Model: {model} ({model_state})",
        f"Adapters: {', '.join(routes)}" if routes else "Adapters: none yet (the base model answers)",
        f"Learner: {learner['state']}; {said}",
        recorded,
        f"Data: {settings.db_path}",
    ]
    return {
        "model": model,
        "modelState": runtime.state,
        "modelError": runtime.error if runtime.state == "failed" else None,
        "routesWithAdapters": routes,
        "learner": learner,
        "store": counts,
        "summary": summary,
    }


def forget(settings: Settings, store: Store | None) -> dict[str, int]:
    """Delete every recorded diagnostic, fix and outcome, and the training files built from them."""
    if store is None:
        return {}
    return forget_data(settings, store).counts


def report_path(settings: Settings) -> dict[str, str] | None:
    """The newest report (a learning cycle's, or ``eval report``'s summary), or None."""
    path = newest_report(settings)
    return {"path": str(path)} if path is not None else None


@dataclass
class LearnStart:
    """What ``learnNow`` says at once, and the learner process still running (None once it ended)."""

    message: str
    process: subprocess.Popen[bytes] | None = None


def last_cycle_sentence(store: Store | None) -> str:
    """What the newest cycle did, in one sentence."""
    cycles = store.cycles(1) if store is not None else []
    if not cycles:
        return "no cycle was recorded; see the learner log"
    return describe_cycle(cycles[0].outcome, cycles[0].details)


def learn_now(settings: Settings, store: Store | None, crates: Sequence[Path] = ()) -> LearnStart:
    """Start one learning cycle in a separate process; say what happened in one sentence. When it
    is still running after :data:`LEARN_STARTUP_S`, the caller reports its end later.

    ``crates`` are the crates the user works in: the cycle mutates them for training and for
    the gate's held-out practice (:mod:`learner.learn.practice`)."""
    if not settings.learning_enabled:
        return LearnStart("learning is turned off (sleepyCoder.learningEnabled = false)")
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.learner_log
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "learner", *learn_arguments(settings, crates)],
            env={**os.environ, SETTINGS_ENV: json.dumps(settings.as_mapping())},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        code = process.wait(timeout=LEARN_STARTUP_S)
    except subprocess.TimeoutExpired:
        return LearnStart(f"learning started (process {process.pid}); its log is {log_path}", process)
    return LearnStart(finished_sentence(code, store, log_path))


def learn_arguments(settings: Settings, crates: Sequence[Path]) -> list[str]:
    """``learn --daemon --once --now`` with the night's budget from the settings and the user's crates."""
    args = [*LEARN_ARGS, "--steps", str(settings.learn_steps), "--per-route", str(settings.learn_examples)]
    args += ["--min-new-fixes", str(settings.learn_min_new_fixes)]
    if not settings.learn_from_docs:
        args.append("--no-docs")
    return [*args, *(arg for c in crates for arg in ("--crate", str(c)))]


def finished_sentence(code: int, store: Store | None, log_path: Path) -> str:
    if code == 0:
        return f"learning cycle finished: {last_cycle_sentence(store)}"
    return f"the learner stopped (exit status {code}); see {log_path}"
