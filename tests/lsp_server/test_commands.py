"""The palette commands' answers over a real store file and real settings, without a real model.

Pins down: the ``status`` JSON shape and how it reports the model state (off, not loaded, failed to
load), the learner state (off, idle, a running cycle's state, unavailable without a store), the last
cycle's time, the routes with an active adapter and the store counts; that ``forget`` deletes the
records and their training files; where ``openReport`` points; and how ``learnNow`` reports a learner
process that is off, still running, finished or failed at once.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from learner.config import Settings
from learner.learn.cycle_report import write_cycle_report
from learner.model.handle import ModelUnavailable, RuntimeHandle
from learner.records import Edit, FixCandidate, RustDiagnostic, Span
from learner.store import Store
from lsp_server import commands
from lsp_server.commands import (
    LEARN_ARGS,
    forget,
    last_cycle_sentence,
    learn_arguments,
    learn_now,
    report_path,
    status,
)


def _settings(tmp_path: Path, **options: Any) -> Settings:
    values = {"dataDir": str(tmp_path / "data"), "cacheDir": str(tmp_path / "cache"), "modelEnabled": False}
    settings = Settings.from_mapping({**values, **options})
    settings.ensure_dirs()
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as s:
        yield s


def _record_fix(store: Store, kind: str = "accepted") -> str:
    span = Span("src/main.rs", 10, 11, 2, 2, 5, 6, is_primary=True)
    diag = RustDiagnostic(level="error", message="borrow of moved value: `s`", code="E0382", spans=(span,))
    diag_id = store.record_diagnostic(diag, crate="/crate", route="moved-value", context="fn main() {}")
    candidate = FixCandidate("rustc", "clone it", (Edit("src/main.rs", 10, 11, "s.clone()"),), "moved-value")
    fix = store.record_offer(
        diag_id, candidate, before_text="let t = s;", after_text="let t = s.clone();", verified=True
    )
    store.record_outcome(fix.offer_id, kind)
    return fix.fix_id


def test_status_without_a_store_says_the_learner_is_unavailable(settings: Settings) -> None:
    answer = status(settings, RuntimeHandle(settings), None)
    summary = answer.pop("summary")
    assert answer == {
        "model": settings.model,
        "modelState": "off",
        "modelError": None,
        "routesWithAdapters": [],
        "learner": {"state": "unavailable", "lastCycle": None},
        "store": {},
    }
    assert summary[0] == f"Model: {settings.model} (model fixes are off (modelEnabled = false))"
    assert "Learner: unavailable; no cycle yet" in summary
    assert "Recorded: nothing (the feedback store cannot be opened)" in summary


def test_status_names_the_backend_server_when_fixes_come_from_one(settings: Settings) -> None:
    remote = Settings.from_mapping({"backend": "openai:http://gpu-box:8000/v1", "modelEnabled": True}, base=settings)
    answer = status(remote, RuntimeHandle(remote), None)
    assert answer["model"] == "openai:http://gpu-box:8000/v1 (server)"
    assert answer["summary"][0].startswith("Model: openai:http://gpu-box:8000/v1 (server) (not loaded yet")


def test_status_of_an_empty_store_is_idle_with_zero_counts(settings: Settings, store: Store) -> None:
    answer = status(settings, RuntimeHandle(settings), store)
    assert answer["learner"] == {"state": "idle", "lastCycle": None}
    assert answer["routesWithAdapters"] == []
    assert answer["store"] == store.counts()
    assert set(answer["store"].values()) == {0}
    assert {"diagnostics", "suggestions", "outcomes", "accepted", "rejected"} <= set(answer["store"])


def test_status_counts_what_the_store_holds(settings: Settings, store: Store) -> None:
    _record_fix(store, "accepted")
    answer = status(settings, RuntimeHandle(settings), store)
    counts = answer["store"]
    assert "Recorded: 1 fixes offered; 1 accepted, 0 edited, 0 reverted, 0 rejected, 0 ignored" in answer["summary"]
    assert not any("suggestions" in line or "outcomes" in line for line in answer["summary"]), "no table names"
    assert (counts["diagnostics"], counts["suggestions"], counts["outcomes"], counts["accepted"]) == (1, 1, 1, 1)
    assert counts["rejected"] == 0


def test_status_shows_a_running_cycle_state_and_when_it_started(settings: Settings, store: Store) -> None:
    cycle = store.start_cycle("training")
    [started] = store.cycles(1)
    assert started.id == cycle
    learner = status(settings, RuntimeHandle(settings), store)["learner"]
    assert learner == {"state": "training", "lastCycle": started.started_at.isoformat(), "lastOutcome": "still running"}


def test_status_after_a_finished_cycle_is_idle_with_its_finish_time(settings: Settings, store: Store) -> None:
    finished = store.finish_cycle(store.start_cycle("training"), "promoted")
    assert finished.finished_at is not None
    learner = status(settings, RuntimeHandle(settings), store)["learner"]
    assert learner["state"] == "idle" and learner["lastCycle"] == finished.finished_at.isoformat()
    assert learner["lastOutcome"].startswith("promoted")


def test_status_with_learning_off_says_off_even_while_a_cycle_runs(tmp_path: Path) -> None:
    off = _settings(tmp_path, learningEnabled=False)
    with Store.open(off) as store:
        store.start_cycle("gating")
        [cycle] = store.cycles(1)
        learner = status(off, RuntimeHandle(off), store)["learner"]
    assert learner["state"] == "off" and learner["lastCycle"] == cycle.started_at.isoformat()


def test_status_lists_only_routes_with_an_active_adapter_sorted(settings: Settings, store: Store) -> None:
    for version, route in (("v1", "trait-bound"), ("v2", "moved-value"), ("v3", "mutability"), ("v4", "share")):
        store.register_candidate(version, route=route, path=settings.adapters_dir / version)
    store.promote("v1")
    store.promote("v2")
    store.reject("v4", "worse")
    assert status(settings, RuntimeHandle(settings), store)["routesWithAdapters"] == ["moved-value", "trait-bound"]


def test_status_reports_a_model_that_is_not_loaded_yet_and_then_failed_to_load(tmp_path: Path, store: Store) -> None:
    missing = tmp_path / "no-such-model"
    settings = _settings(tmp_path, model=str(missing), modelEnabled=True)
    runtime = RuntimeHandle(settings)
    answer = status(settings, runtime, store)
    assert answer["model"] == str(missing) and answer["modelState"] == "not-loaded"
    with pytest.raises(ModelUnavailable):
        runtime.get()
    assert status(settings, runtime, store)["modelState"] == "failed"
    assert runtime.error is not None and str(missing) in runtime.error


def test_forget_without_a_store_deletes_nothing(settings: Settings) -> None:
    assert forget(settings, None) == {}


def test_forget_deletes_records_and_training_files_but_keeps_adapters(settings: Settings, store: Store) -> None:
    fix_id = _record_fix(store, "accepted")
    settings.training_dir.mkdir(parents=True, exist_ok=True)
    training_file = settings.training_dir / "moved-value.jsonl"
    training_file.write_text('{"prompt": "user code"}\n')
    store.record_training_set("moved-value", training_file, n_examples=1, sha="x", source_fix_ids=[fix_id])
    store.register_candidate("v1", route="moved-value", path=settings.adapters_dir / "v1")
    store.promote("v1")

    counts = forget(settings, store)

    assert counts == {"outcomes": 1, "offers": 1, "suggestions": 1, "diagnostics": 1, "training_sets": 1}
    assert not training_file.exists()
    left = store.counts()
    assert (left["diagnostics"], left["suggestions"], left["outcomes"], left["training_sets"]) == (0, 0, 0, 0)
    assert store.fix(fix_id) is None
    assert list(store.active_versions()) == ["moved-value"]
    assert forget(settings, store) == {
        "outcomes": 0,
        "offers": 0,
        "suggestions": 0,
        "diagnostics": 0,
        "training_sets": 0,
    }


def test_report_path_is_the_newest_report_a_cycle_or_an_eval_wrote(settings: Settings, store: Store) -> None:
    assert report_path(settings) is None
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    summary = settings.reports_dir / "summary.md"
    summary.write_text("# results\n")
    os.utime(summary, (1, 1))
    assert report_path(settings) == {"path": str(summary)}
    cycle = store.finish_cycle(store.start_cycle(), "nothing-to-learn", {"new_examples": {"borrow": 1}})
    latest = write_cycle_report(settings, cycle)
    assert report_path(settings) == {"path": str(latest)}
    text = latest.read_text()
    assert (
        text.startswith(f"# Learning cycle {cycle.id}") and "nothing to learn: 1 new accepted fix (borrow: 1)" in text
    )


def test_learn_now_with_learning_off_starts_nothing(tmp_path: Path) -> None:
    off = _settings(tmp_path, learningEnabled=False)
    answer = learn_now(off, None)
    assert answer.message == "learning is turned off (sleepyCoder.learningEnabled = false)" and answer.process is None
    assert not off.learner_log.exists()


def _fake_python(tmp_path: Path, body: str) -> Path:
    """A stand-in interpreter: a real process that logs its arguments and then runs ``body``."""
    script = tmp_path / "fake-python"
    script.write_text(f'#!/bin/sh\necho "args: $*"\necho "settings: $SLEEPY_CODER_SETTINGS"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_learn_now_reports_a_learner_that_stops_at_once_with_its_status(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(_fake_python(tmp_path, "echo 'no GPU' >&2\nexit 3")))
    answer = learn_now(settings, None).message
    assert answer == f"the learner stopped (exit status 3); see {settings.learner_log}"
    log = settings.learner_log.read_text()
    assert f"args: -m learner {' '.join(LEARN_ARGS)} --steps 100 --per-route 64 --min-new-fixes 1\n" in log
    handed = json.loads(log.split("settings: ", 1)[1].splitlines()[0])
    assert Settings.from_mapping(handed) == settings, "the learner gets the server's settings, not the defaults"
    assert "no GPU" in log, "stderr goes to the learner log too"


def test_the_nights_budget_comes_from_the_settings() -> None:
    frugal = Settings.from_mapping({"learnSteps": 8, "learnExamples": 6, "learnFromDocs": False, "learnMinNewFixes": 3})
    args = learn_arguments(frugal, [Path("/w/app")])
    budget = ["--steps", "8", "--per-route", "6", "--min-new-fixes", "3"]
    assert args == [*LEARN_ARGS, *budget, "--no-docs", "--crate", "/w/app"]


def test_learn_now_appends_to_the_learner_log(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.learner_log.write_text("earlier run\n")
    monkeypatch.setattr(sys, "executable", str(_fake_python(tmp_path, "exit 0")))
    assert learn_now(settings, None).message == "learning cycle finished: no cycle was recorded; see the learner log"
    assert settings.learner_log.read_text().startswith("earlier run\nargs: -m learner")


def test_learn_now_leaves_a_long_running_learner_running_and_names_its_process(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(_fake_python(tmp_path, "exec sleep 30")))
    monkeypatch.setattr(commands, "LEARN_STARTUP_S", 0.3)
    started = time.monotonic()
    started_learning = learn_now(settings, None, [tmp_path / "app"])
    answer = started_learning.message
    assert started_learning.process is not None
    # the crates the user works in reach the learner: its curriculum and the gate's practice
    assert list(started_learning.process.args)[-2:] == ["--crate", str(tmp_path / "app")]
    assert time.monotonic() - started < 5
    assert answer.startswith("learning started (process ") and answer.endswith(f"its log is {settings.learner_log}")
    pid = int(answer.removeprefix("learning started (process ").split(")")[0])
    try:
        os.kill(pid, 0)  # still alive after learn_now returned
        assert os.getpgid(pid) == pid, "detached from the server in a session of its own"
    finally:
        os.kill(pid, signal.SIGTERM)


def _wait_for(path: Path, text: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in {path}: {path.read_text() if path.exists() else '(missing)'}")


def test_learn_now_runs_a_real_learner_cycle_that_finds_nothing_to_learn(tmp_path: Path, isolated_home: Path) -> None:
    settings = Settings(model=str(tmp_path / "no-model"), model_enabled=False)
    assert settings.data_dir == isolated_home / "data"
    settings.ensure_dirs()
    with Store.open(settings) as store:
        started = learn_now(settings, store)
        if started.process is not None:  # the real learner takes about as long as learn_now waits for it
            assert started.process.wait(timeout=120) == 0
        _wait_for(settings.learner_log, "nothing to learn")
        [cycle] = store.cycles()
        assert cycle.outcome == "nothing-to-learn" and cycle.finished_at is not None
        assert last_cycle_sentence(store) == "nothing to learn: 0 new accepted fixes"
        if started.process is None:
            assert started.message == "learning cycle finished: nothing to learn: 0 new accepted fixes"
    assert (settings.reports_dir / "latest-cycle.md").is_file(), "the cycle wrote its report"


def test_learn_now_learns_from_the_store_in_the_servers_data_folder(tmp_path: Path) -> None:
    custom = _settings(tmp_path / "custom", model=str(tmp_path / "no-model"))
    learn_now(custom, None)
    _wait_for(custom.learner_log, "nothing-to-learn")
    with Store.open(custom) as store:
        assert [c.outcome for c in store.cycles()] == ["nothing-to-learn"]
