"""The idle learner: ``sleepy-coder learn --daemon``, a separate process that learns while the user is away.

One cycle (:meth:`Learner.cycle`), each step recorded in the store's ``learner_cycles`` row:

1. retention: records older than ``settings.retention_days`` are forgotten, with the training
   sets derived from them (their files too);
2. what to do: a candidate left by an interrupted cycle is gated first; else an interrupted
   training run is resumed; else the routes with at least ``min_new_examples`` new accepted or
   edited fixes since the last trained cycle are the targets (nothing to learn: done);
3. training (:func:`learner.learn.phases.run_learning`): the store's accepted fixes of the target
   routes (all of them: replay; edited ones weigh most) topped up by the mutation curriculum,
   *minus* the gate's held-out fixes, checkpointed every step;
4. the gate (:mod:`learner.learn.gate`) scores the candidate against what is active and records the
   decision; promotion is one store transaction, so a crash leaves the last good version active.

The user coming back (editor heartbeat newer than the cycle's start, or the charger unplugged)
trips a :class:`~learner.learn.idle.PauseSwitch` within a watcher interval; training stops inside the
current step and the next cycle resumes from the last per-step checkpoint.

One instance at a time: an ``fcntl`` lock on ``data_dir/learner.lock`` (the file names the
holder's pid, which ``sleepy-coder status`` reads). Logs go to ``logs_dir/learner.log``
(rotated). With the embedded model the process sets ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE``
so nothing can reach the network.

Test hooks (environment variables, read once per cycle; documented here because tests kill
the process at precise moments): ``SLEEPY_CODER_TEST_STEP_DELAY_S`` sleeps that long after each
training step; ``SLEEPY_CODER_TEST_PAUSE_AT=promotion`` sleeps ``SLEEPY_CODER_TEST_PAUSE_S``
(default 30) right before the gate's decision is written, logging ``test hook: pausing``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import logging.handlers
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.learn.cycle_report import describe_cycle, write_cycle_report
from learner.learn.forget import apply_retention
from learner.learn.gate import GateConfig, evaluate_candidate, heldout_fix_ids, is_held_out, record_decision
from learner.learn.idle import IdleDetector, LearningPaused, PauseSwitch
from learner.learn.train import StepCallback

if TYPE_CHECKING:
    from learner.learn.curriculum import Snippet
    from learner.model.runtime import ModelRuntime
    from learner.store import AdapterVersion, Store

log = logging.getLogger("learner.learn.daemon")

STEP_DELAY_ENV = "SLEEPY_CODER_TEST_STEP_DELAY_S"
PAUSE_AT_ENV = "SLEEPY_CODER_TEST_PAUSE_AT"
PAUSE_S_ENV = "SLEEPY_CODER_TEST_PAUSE_S"
#: Cycle outcomes after which the examples seen count as learned from.
TRAINED_OUTCOMES = ("promoted", "rejected")


class DaemonError(SleepyCoderError):
    """The learner process cannot run."""


class AlreadyRunning(DaemonError):
    """Another learner holds the lock."""


# ----------------------------------------------------------------------------- one instance, logging


def lock_path(settings: Settings) -> Path:
    return settings.learner_lock


class InstanceLock:
    """An exclusive ``fcntl.flock`` on ``data_dir/learner.lock``; released by the kernel even on ``kill -9``."""

    def __init__(self, settings: Settings) -> None:
        self.path = lock_path(settings)
        self._fp: IO[str] | None = None

    def __enter__(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fp = open(self.path, "a+")
        try:
            fcntl.flock(fp.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fp.seek(0)
            holder = fp.read().strip() or "unknown"
            fp.close()
            raise AlreadyRunning(
                f"another sleepy-coder learner is running (pid {holder}, lock {self.path}); only one may run at a time"
            ) from None
        fp.seek(0)
        fp.truncate()
        fp.write(str(os.getpid()))
        fp.flush()
        self._fp = fp
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fp is not None:
            self._fp.close()  # closing drops the flock
            self._fp = None


def running_pid(settings: Settings) -> int | None:
    """The pid of the running learner, or None (the lock is free or absent)."""
    path = lock_path(settings)
    if not path.is_file():
        return None
    with open(path) as fp:
        try:
            fcntl.flock(fp.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = fp.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fp.fileno(), fcntl.LOCK_UN)
    return None


def setup_logging(settings: Settings) -> logging.Handler:
    """``logs_dir/learner.log``, 1 MB x 3 rotated files, for the whole ``learner`` package."""
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        settings.learner_log, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("learner")
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    return handler


def go_offline(settings: Settings) -> None:
    """No network with the embedded model: the hub libraries must not even try."""
    if settings.uses_embedded_model:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"


# ----------------------------------------------------------------------------- configuration


@dataclass
class DaemonConfig:
    #: A route is learned when it has at least this many new accepted/edited fixes (held-out ones
    #: aside); ``learn --daemon`` takes it from the ``learn_min_new_fixes`` setting.
    min_new_examples: int = Settings.learn_min_new_fixes
    #: Seconds between idle checks when not learning.
    poll_s: float = 60.0
    #: Seconds between "has the user come back?" checks while a cycle runs.
    watch_s: float = 2.0
    #: Skip the idle check before a cycle (``--now``); the user coming back still pauses it.
    require_idle: bool = True
    cpu_threshold: float = 50.0
    steps: int = 30
    per_route: int = 32
    use_docs: bool = True
    batch_size: int = 4
    max_tokens: int = 256
    #: Other :class:`~learner.learn.phases.LearnOptions` fields (learning rates, Share knobs).
    learn: dict[str, Any] = field(default_factory=dict)
    gate: GateConfig = field(default_factory=GateConfig)
    #: Extra correct code for the curriculum (tests use a small corpus).
    snippets: tuple[Snippet, ...] = ()


@dataclass(frozen=True)
class CycleResult:
    cycle_id: int
    outcome: str
    details: dict[str, Any]


# ----------------------------------------------------------------------------- the learner


class _CycleReporter:
    """Training progress into the log; every step is also a pause point (and the slow-step test hook)."""

    def __init__(self, switch: PauseSwitch, step_delay_s: float) -> None:
        self.switch = switch
        self.step_delay_s = step_delay_s

    def message(self, text: str) -> None:
        log.info("%s", text)

    def task(self, label: str, total: int) -> StepCallback:
        def on_step(step: int, steps: int, loss: float, rate: float, seconds: float) -> None:
            log.info("%s step %d/%d loss %.4f (%.1fs)", label, step, steps, loss, seconds)
            if self.step_delay_s > 0:
                self.switch.event.wait(self.step_delay_s)
            self.switch.raise_if_tripped()

        return on_step


class Learner:
    """Runs cycles; holds the model once loaded. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        config: DaemonConfig | None = None,
        *,
        detector: IdleDetector | None = None,
        runtime: ModelRuntime | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or DaemonConfig()
        self.detector = detector
        self.runtime = runtime
        self.stopping = threading.Event()
        self.switch = PauseSwitch()

    # ----- the loop

    def run(self, *, once: bool = False, max_cycles: int | None = None) -> list[CycleResult]:
        """Cycle whenever idle until stopped (SIGTERM/SIGINT), after one cycle with ``once``."""
        from learner.store import Store

        results: list[CycleResult] = []
        with Store.open(self.settings) as store:
            self._close_interrupted(store)
            detector = self.detector or IdleDetector(
                self.settings, store=store, cpu_threshold=self.config.cpu_threshold
            )
            while not self.stopping.is_set():
                store.heartbeat("learner")
                verdict = detector.check() if self.config.require_idle else None
                if verdict is not None and not verdict.idle:
                    log.info("not learning: %s", verdict.describe())
                    if once:
                        results.append(CycleResult(0, "not-idle", {"reason": verdict.describe()}))
                        break
                else:
                    results.append(self.cycle(store, detector))
                    if once or (max_cycles is not None and len(results) >= max_cycles):
                        break
                self.stopping.wait(self.config.poll_s)
        return results

    def stop(self, reason: str = "stopping") -> None:
        self.stopping.set()
        self.switch.trip(reason)

    def _close_interrupted(self, store: Store) -> None:
        """Cycles left unfinished by a killed learner (we hold the lock: none is running)."""
        for cycle in store.cycles(limit=50):
            if cycle.finished_at is None:
                store.finish_cycle(cycle.id, "interrupted", {"interrupted_in": cycle.state})
                log.info("cycle %d was interrupted in state %s", cycle.id, cycle.state)

    # ----- one cycle

    def cycle(self, store: Store, detector: IdleDetector) -> CycleResult:
        started = datetime.now(UTC)
        self.switch = PauseSwitch()
        cycle_id = store.start_cycle("retention")
        log.info("cycle %d started", cycle_id)
        details: dict[str, Any] = {}
        try:
            details["retention"] = self._retention(store)
            outcome = self._work(store, cycle_id, details, detector, started)
        except LearningPaused as paused:
            outcome = "paused"
            details["paused"] = paused.args[0] if paused.args else self.switch.reason
            log.info("cycle %d paused: %s", cycle_id, details["paused"])
        except SleepyCoderError as exc:
            outcome = "failed"
            details["error"] = str(exc)
            log.warning("cycle %d failed: %s", cycle_id, exc)
        except Exception as exc:  # the daemon must outlive one bad cycle; the log keeps the traceback
            outcome = "failed"
            details["error"] = f"{type(exc).__name__}: {exc}"
            log.exception("cycle %d failed", cycle_id)
        finished = store.finish_cycle(cycle_id, outcome, details)
        log.info("cycle %d finished: %s", cycle_id, describe_cycle(outcome, details))
        try:
            write_cycle_report(self.settings, finished)
        except OSError as exc:  # the cycle's work is in the store; a report that cannot be written is not fatal
            log.warning("could not write the report of cycle %d: %s", cycle_id, exc)
        return CycleResult(cycle_id, outcome, details)

    def _retention(self, store: Store) -> dict[str, Any]:
        forgotten = apply_retention(self.settings, store, self.settings.retention_days)
        return {"deleted": forgotten.counts, "files": list(forgotten.files)}

    def _work(
        self, store: Store, cycle_id: int, details: dict[str, Any], detector: IdleDetector, started: datetime
    ) -> str:
        from learner.learn.phases import latest_unfinished_run

        pending = self._pending_candidate(store)
        if pending is not None:
            candidate, targets = pending
            details.update({"candidate": candidate.version, "targets": targets, "resumed": "gate"})
            return self._gate(store, cycle_id, details, candidate, targets, detector, started)
        unfinished = latest_unfinished_run(self.settings)
        if unfinished is not None:
            options = json.loads((unfinished / "run.json").read_text())["options"]
            targets = list(options.get("routes") or [])
            previous = _last_details(store, "selected_at", skip=cycle_id)
            details.update({"targets": targets, "resumed": unfinished.name, "selected_at": previous.get("selected_at")})
            return self._train_and_gate(store, cycle_id, details, targets, detector, started, resume=True)
        selected_at = datetime.now(UTC)
        targets, new = self._targets(store)
        details.update({"new_examples": new, "targets": targets, "selected_at": selected_at.isoformat()})
        store.update_cycle(cycle_id, state="selecting", details=details)
        if not targets:
            return "nothing-to-learn"
        return self._train_and_gate(store, cycle_id, details, targets, detector, started, resume=False)

    def _targets(self, store: Store) -> tuple[list[str], dict[str, int]]:
        """Routes with enough new, trainable (not held-out, not fallback) accepted fixes since the last training."""
        from learner.records import FALLBACK_ROUTE

        since_text = _last_details(store, "selected_at", outcomes=TRAINED_OUTCOMES).get("selected_at")
        since = datetime.fromisoformat(since_text) if since_text else None
        new: dict[str, int] = {}
        for ex in store.accepted_fixes(since=since):
            if ex.route != FALLBACK_ROUTE and not is_held_out(ex.fix_id):
                new[ex.route] = new.get(ex.route, 0) + 1
        targets = sorted(r for r, n in new.items() if n >= self.config.min_new_examples)
        return targets, new

    def _pending_candidate(self, store: Store) -> tuple[AdapterVersion, list[str]] | None:
        """The newest ungated Share candidate (older ones are superseded), with its target routes."""
        from learner.records import SHARE_ROUTE

        candidates = [c for c in store.adapters(route=SHARE_ROUTE, status="candidate") if Path(c.path).is_dir()]
        if not candidates:
            return None
        newest, older = candidates[0], candidates[1:]
        for old in older:
            store.reject(old.version, f"superseded by {newest.version} before it was gated")
        metrics = newest.metrics
        targets = list(metrics.get("targets") or metrics.get("final_loss") or metrics.get("routes") or [])
        return newest, targets

    def _ensure_runtime(self) -> ModelRuntime:
        if self.runtime is None:
            from learner.model.runtime import load_runtime

            log.info("loading %s", self.settings.model)
            self.runtime = load_runtime(self.settings)
        return self.runtime

    @contextlib.contextmanager
    def _watching(self, detector: IdleDetector, since: datetime) -> Iterator[PauseSwitch]:
        """Arm the pause switch and poll ``detector.user_returned`` on a thread while the body runs."""
        switch = self.switch
        done = threading.Event()

        def watch() -> None:
            while not done.wait(self.config.watch_s):
                try:
                    reason = detector.user_returned(since)
                except SleepyCoderError as exc:  # a busy store must not stop the watcher
                    log.warning("idle watcher: %s", exc)
                    continue
                if reason:
                    switch.trip(reason)
                    return

        thread = threading.Thread(target=watch, name="sleepy-coder-idle-watch", daemon=True)
        thread.start()
        try:
            with switch.armed():
                yield switch
        finally:
            done.set()
            thread.join()

    def _train_and_gate(
        self,
        store: Store,
        cycle_id: int,
        details: dict[str, Any],
        targets: list[str],
        detector: IdleDetector,
        started: datetime,
        *,
        resume: bool,
    ) -> str:
        from learner.learn.phases import LearnOptions, run_learning

        runtime = self._ensure_runtime()
        options = LearnOptions(
            routes=tuple(targets),
            steps=self.config.steps,
            per_route=self.config.per_route,
            use_docs=self.config.use_docs,
            batch_size=self.config.batch_size,
            max_tokens=self.config.max_tokens,
            checkpoint_every=1,
            exclude_fix_ids=heldout_fix_ids(store),
            **self.config.learn,
        )
        details["held_out"] = len(options.exclude_fix_ids)
        store.update_cycle(cycle_id, state="training", details=details)
        reporter = _CycleReporter(self.switch, float(os.environ.get(STEP_DELAY_ENV, "0") or 0))
        with self._watching(detector, started):
            report = run_learning(
                self.settings, options, runtime=runtime, reporter=reporter, snippets=self.config.snippets, resume=resume
            )
        details.update({"run": report.run_dir.name, "phases": report.phases_done})
        if not report.finished or report.version is None:
            raise DaemonError(f"training run {report.run_dir.name} produced no adapter set")
        candidate = store.set_adapter_metrics(report.version, {"targets": targets, "cycle": cycle_id})
        details["candidate"] = candidate.version
        return self._gate(store, cycle_id, details, candidate, targets, detector, started)

    def _gate(
        self,
        store: Store,
        cycle_id: int,
        details: dict[str, Any],
        candidate: AdapterVersion,
        targets: list[str],
        detector: IdleDetector,
        started: datetime,
    ) -> str:
        runtime = self._ensure_runtime()
        store.update_cycle(cycle_id, state="gating", details=details)
        gate_config = self.config.gate
        with self._watching(detector, started) as switch:
            result = evaluate_candidate(self.settings, store, runtime, candidate, targets, gate_config, switch=switch)
        details["gate"] = result.decision.as_json()
        store.update_cycle(cycle_id, state="promoting", details=details)
        _test_pause("promotion")
        record_decision(store, candidate, result, self.settings.model)
        log.info("gate on %s: %s", candidate.version, result.decision.reason)
        if result.decision.promote and self.settings.uses_remote_backend and self.settings.publish_adapters:
            details["published"] = self._publish(store, runtime)
            store.update_cycle(cycle_id, details=details)
        return "promoted" if result.decision.promote else "rejected"

    def _publish(self, store: Store, runtime: Any) -> dict[str, Any]:
        """Keep the backend server's adapters in step with the promotion; a failure is logged and
        recorded, never a failed cycle (the laptop's own adapters are already promoted)."""
        from learner.model.serving import publish_active

        try:
            report = publish_active(self.settings, store, runtime.model)
        except SleepyCoderError as exc:
            log.warning("could not publish the promoted adapters to %s: %s", self.settings.backend, exc)
            return {"error": str(exc)}
        return {"loaded": report.loaded, "unloaded": report.unloaded, "unchanged": report.unchanged}


def _last_details(
    store: Store, key: str, *, outcomes: tuple[str, ...] | None = None, skip: int | None = None
) -> dict[str, Any]:
    """Details of the newest cycle that recorded ``key`` (and ended in one of ``outcomes``)."""
    for cycle in store.cycles(limit=200):
        if cycle.id == skip or key not in cycle.details:
            continue
        if outcomes is None or cycle.outcome in outcomes:
            return cycle.details
    return {}


def _test_pause(point: str) -> None:
    if os.environ.get(PAUSE_AT_ENV) == point:
        seconds = float(os.environ.get(PAUSE_S_ENV, "30") or 30)
        log.info("test hook: pausing %.0fs before %s", seconds, point)
        for handler in logging.getLogger("learner").handlers:
            handler.flush()
        time.sleep(seconds)


# ----------------------------------------------------------------------------- entry point


def run_daemon(
    settings: Settings,
    config: DaemonConfig | None = None,
    *,
    once: bool = False,
    detector: IdleDetector | None = None,
) -> list[CycleResult]:
    """The process body of ``sleepy-coder learn --daemon``: lock, log, go offline, cycle until stopped."""
    settings.ensure_dirs()
    go_offline(settings)
    with InstanceLock(settings):
        handler = setup_logging(settings)
        learner = Learner(settings, config, detector=detector)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: learner.stop("asked to stop"))
        log.info("learner %d started (once=%s, model %s)", os.getpid(), once, settings.model)
        try:
            return learner.run(once=once)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            log.info("learner %d stopped", os.getpid())
            logging.getLogger("learner").removeHandler(handler)
            handler.close()
