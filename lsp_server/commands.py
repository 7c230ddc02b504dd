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
from typing import Any

from learner.config import SETTINGS_ENV, Settings
from learner.learn.forget import forget as forget_data
from learner.model.handle import RuntimeHandle
from learner.store import Store

#: ``python -m learner`` arguments that run one learning cycle now (not waiting for idle time),
#: detached from the server.
LEARN_ARGS = ("learn", "--daemon", "--once", "--now")
#: A learner that dies within this many seconds is reported as failed, with its log.
LEARN_STARTUP_S = 1.5


def status(settings: Settings, runtime: RuntimeHandle, store: Store | None) -> dict[str, Any]:
    """``{model, modelState, routesWithAdapters, learner: {state, lastCycle}, store: counts}``."""
    learner: dict[str, Any] = {"state": "off" if not settings.learning_enabled else "idle", "lastCycle": None}
    routes: list[str] = []
    counts: dict[str, int] = {}
    if store is None:
        learner["state"] = "unavailable"
    else:
        routes = sorted(store.active_versions())
        counts = store.counts()
        cycles = store.cycles(1)
        if cycles:
            cycle = cycles[0]
            if cycle.finished_at is None and settings.learning_enabled:
                learner["state"] = cycle.state
            learner["lastCycle"] = (cycle.finished_at or cycle.started_at).isoformat()
    return {
        "model": settings.model,
        "modelState": runtime.state,
        "routesWithAdapters": routes,
        "learner": learner,
        "store": counts,
    }


def forget(settings: Settings, store: Store | None) -> dict[str, int]:
    """Delete every recorded diagnostic, fix and outcome, and the training files built from them."""
    if store is None:
        return {}
    return forget_data(settings, store).counts


def report_path(settings: Settings) -> dict[str, str] | None:
    path = settings.reports_dir / "summary.md"
    return {"path": str(path)} if path.is_file() else None


def learn_now(settings: Settings) -> str:
    """Start one learning cycle in a separate process; say what happened in one sentence."""
    if not settings.learning_enabled:
        return "learning is turned off (sleepyCoder.learningEnabled = false)"
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.learner_log
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "learner", *LEARN_ARGS],
            env={**os.environ, SETTINGS_ENV: json.dumps(settings.as_mapping())},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        code = process.wait(timeout=LEARN_STARTUP_S)
    except subprocess.TimeoutExpired:
        return f"learning started (process {process.pid}); its log is {log_path}"
    if code == 0:
        return f"the learning cycle finished; its log is {log_path}"
    return f"the learner stopped at once (exit status {code}); see {log_path}"
