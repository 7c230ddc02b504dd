"""The idle learner on the tiny model: a whole cycle, the single-instance lock, kill -9 during training
and during promotion, concurrent writers, hot swap."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.idle_cycle import seed_accepted_fixes
from learner.config import Settings
from learner.learn.benchmark import BenchmarkGuard
from learner.learn.curriculum import CurriculumConfig, build_curriculum, load_training_set
from learner.learn.daemon import AlreadyRunning, DaemonConfig, InstanceLock, Learner, run_daemon, running_pid
from learner.learn.examples import TrainingExample
from learner.learn.gate import GateConfig, is_held_out
from learner.learn.idle import IdleDetector
from learner.model.hotswap import HotSwap
from learner.records import SHARE_ROUTE
from learner.store import Store
from tests.learn.test_curriculum import CORPUS

ROUTE = "mutability"
REPO = Path(__file__).resolve().parents[2]


def tiny_config(**kw: Any) -> DaemonConfig:
    base = DaemonConfig(
        min_new_examples=2,
        poll_s=0.1,
        watch_s=0.2,
        require_idle=False,
        steps=3,
        per_route=8,
        use_docs=False,
        batch_size=2,
        max_tokens=160,
        learn={"lora_lr": 2e-2, "coef_lr": 5e-2, "min_examples": 1, "share": {"k_min": 1}},
        gate=GateConfig(bench_limit=0, min_examples=1, max_new_tokens=48),
        snippets=CORPUS,
    )
    return dataclasses.replace(base, **kw)


def make_settings(root: Path, model: Path) -> Settings:
    s = Settings(model=str(model), data_dir=root / "data", cache_dir=root / "cache", retention_days=0)
    s.ensure_dirs()
    return s


def curriculum_rows(settings: Settings, route: str, n: int) -> list[TrainingExample]:
    made = build_curriculum(
        settings, CurriculumConfig(per_route=n, routes=(route,), use_docs=False, use_store=False),
        snippets=CORPUS, leakage=BenchmarkGuard(), record=False,
    )  # fmt: skip
    return made.examples[route]


@pytest.fixture
def seeded(tmp_path: Path, tiny_model_dir: Path) -> tuple[Settings, list[str]]:
    settings = make_settings(tmp_path, tiny_model_dir)
    rows = curriculum_rows(settings, ROUTE, 10)
    fix_ids = seed_accepted_fixes(settings, rows)
    return settings, fix_ids


def test_whole_cycle_trains_gates_records_and_never_trains_on_held_out_or_rejected(
    seeded: tuple[Settings, list[str]], tiny_model_dir: Path
) -> None:
    settings, fix_ids = seeded
    rejected = seed_accepted_fixes(settings, curriculum_rows(settings, "struct-fields", 4), kind="rejected")
    held = {f for f in fix_ids if is_held_out(f)}
    assert held and len(held) < len(fix_ids)
    (result,) = run_daemon(settings, tiny_config(), once=True)
    assert result.outcome in ("promoted", "rejected"), result.details
    assert result.details["targets"] == [ROUTE]  # the rejected struct-fields fixes are no target
    with Store.open(settings) as store:
        candidate = store.adapter(result.details["candidate"])
        cycle = store.cycles(limit=1)[0]
        sets = store.training_sets()
    assert candidate.status == ("active" if result.outcome == "promoted" else "rejected")
    gate = candidate.metrics["gate"]
    assert gate["scores"][ROUTE]["after"][1] == len(held)
    assert cycle.outcome == result.outcome and cycle.details["gate"]["reason"] == gate["reason"]
    trained = {row.fix_id for s in sets for row in load_training_set(Path(s.path))}
    assert trained & set(fix_ids) == set(fix_ids) - held
    assert not trained & (held | set(rejected))
    # nothing new since: the next cycle has nothing to learn
    (again,) = run_daemon(settings, tiny_config(), once=True)
    assert again.outcome == "nothing-to-learn"


def test_second_instance_exits_with_a_clear_message(settings: Settings) -> None:
    with InstanceLock(settings):
        assert running_pid(settings) == os.getpid()
        with pytest.raises(AlreadyRunning, match="another sleepy-coder learner is running"), InstanceLock(settings):
            pass
    assert running_pid(settings) is None


def test_second_daemon_process_refuses_to_start(settings: Settings) -> None:
    with InstanceLock(settings):
        out = subprocess.run(
            [sys.executable, "-m", "learner", "learn", "--daemon", "--once"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
    assert out.returncode == 2
    assert "another sleepy-coder learner is running" in out.stderr


def test_user_coming_back_pauses_training_and_the_next_cycle_resumes(
    seeded: tuple[Settings, list[str]],
) -> None:
    settings, _ = seeded
    with Store.open(settings) as store:
        busy: dict[str, datetime | None] = {"at": None}
        detector = IdleDetector(settings, activity=lambda: busy["at"], cpu=lambda: 0.0, power=lambda: None)
        learner = Learner(settings, tiny_config(steps=12))
        timer = threading.Timer(1.0, lambda: busy.update(at=datetime.now(UTC)))
        timer.start()
        first = learner.cycle(store, detector)
        timer.cancel()
        assert first.outcome == "paused" and first.details["paused"] == "the editor is active again"
        busy["at"] = None
        second = learner.cycle(store, detector)
    assert second.outcome in ("promoted", "rejected"), second.details
    assert second.details["resumed"].startswith("run-")


# ----------------------------------------------------------------------------- kill -9

_DAEMON_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from learner.config import Settings
    from learner.learn.daemon import run_daemon
    from tests.learn.test_daemon import make_settings, tiny_config
    settings = make_settings(Path(sys.argv[1]), Path(sys.argv[2]))
    results = run_daemon(settings, tiny_config(steps=int(sys.argv[3])), once=True)
    print(results[0].outcome, flush=True)
    """
)


def _daemon(root: Path, model: Path, steps: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _DAEMON_SCRIPT, str(root), str(model), str(steps)],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_log(settings: Settings, needle: str, proc: subprocess.Popen[str], timeout: float = 240) -> None:
    log = settings.logs_dir / "learner.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and needle in log.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited early: {proc.communicate()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{needle!r} never appeared in {log}")


def _integrity_ok(settings: Settings) -> None:
    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def _promote_a_previous_version(settings: Settings) -> str:
    """A good version that must stay active whatever happens to the next cycle."""
    from learner.learn.phases import LearnOptions, run_learning

    opts = LearnOptions(routes=("struct-fields",), steps=2, per_route=4, min_examples=1, use_docs=False,
                        batch_size=2, max_tokens=160, checkpoint_every=1, promote=True, share={"k_min": 1})  # fmt: skip
    report = run_learning(settings, opts, snippets=CORPUS)
    assert report.version is not None
    return report.version


def test_kill_during_training_keeps_the_store_and_active_version_and_the_next_run_resumes(
    seeded: tuple[Settings, list[str]], tiny_model_dir: Path
) -> None:
    settings, _ = seeded
    previous = _promote_a_previous_version(settings)
    root = settings.data_dir.parent
    proc = _daemon(root, tiny_model_dir, 6, {"SLEEPY_CODER_TEST_STEP_DELAY_S": "1"})
    _wait_for_log(settings, "step 2/6", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _integrity_ok(settings)
    with Store.open(settings) as store:
        assert store.active_versions()[SHARE_ROUTE].version == previous
        assert store.cycles(limit=1)[0].state == "training"
    resumed = _daemon(root, tiny_model_dir, 6, {})
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    with Store.open(settings) as store:
        last = store.cycles(limit=2)
        assert last[1].outcome == "interrupted"
        assert last[0].details["resumed"].startswith("run-"), last[0].details
        assert last[0].outcome in ("promoted", "rejected")
    assert "resuming run-" in (settings.logs_dir / "learner.log").read_text()


def test_kill_during_promotion_leaves_the_last_good_version_active(
    seeded: tuple[Settings, list[str]], tiny_model_dir: Path
) -> None:
    settings, _ = seeded
    previous = _promote_a_previous_version(settings)
    root = settings.data_dir.parent
    env = {"SLEEPY_CODER_TEST_PAUSE_AT": "promotion", "SLEEPY_CODER_TEST_PAUSE_S": "60"}
    proc = _daemon(root, tiny_model_dir, 2, env)
    _wait_for_log(settings, "test hook: pausing", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _integrity_ok(settings)
    with Store.open(settings) as store:
        assert store.active_versions()[SHARE_ROUTE].version == previous
        pending = store.adapters(route=SHARE_ROUTE, status="candidate")
        assert len(pending) == 1 and store.cycles(limit=1)[0].state == "promoting"
    resumed = _daemon(root, tiny_model_dir, 2, {})
    resumed.communicate(timeout=300)
    with Store.open(settings) as store:
        gated = store.adapter(pending[0].version)
        assert gated.status in ("active", "rejected") and "gate" in gated.metrics
        assert store.cycles(limit=1)[0].details["resumed"] == "gate"


# ----------------------------------------------------------------------------- concurrent writers

_SERVER_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from learner.config import Settings
    from learner.records import Edit, FixCandidate, RustDiagnostic
    from learner.store import Store
    s = Settings(data_dir=Path(sys.argv[1]))
    end = time.monotonic() + float(sys.argv[2])
    n = 0
    with Store.open(s) as store:
        while time.monotonic() < end:
            d = store.record_diagnostic(RustDiagnostic("error", f"m{n}", "E0384"), crate="/c", route="mutability",
                                        context=f"fn f{n}() {{}}")
            c = FixCandidate("model", "t", (Edit("main.rs", 0, 1, f"x{n}"),), "mutability")
            shown = store.record_offer(d, c, before_text=f"a{n}", after_text=f"b{n}", verified=True)
            store.record_outcome(shown.offer_id, "accepted")
            store.heartbeat("server")
            n += 1
    print(n)
    """
)

_LEARNER_BOOKKEEPING = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from learner.config import Settings
    from learner.learn.daemon import DaemonConfig, Learner
    from learner.learn.idle import IdleDetector
    from learner.store import Store
    s = Settings(data_dir=Path(sys.argv[1]), retention_days=0)
    end = time.monotonic() + float(sys.argv[2])
    learner = Learner(s, DaemonConfig(min_new_examples=10**9, require_idle=False))
    n = 0
    with Store.open(s) as store:
        det = IdleDetector(s, store=store, cpu=lambda: 0.0, power=lambda: None)
        while time.monotonic() < end:
            assert learner.cycle(store, det).outcome == "nothing-to-learn"
            store.heartbeat("learner")
            n += 1
    print(n)
    """
)


def run_concurrent_writers(data_dir: Path, seconds: float) -> tuple[int, int, Store]:
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(data_dir), str(seconds)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for script in (_SERVER_WRITER, _LEARNER_BOOKKEEPING)
    ]  # fmt: skip
    outs = [p.communicate(timeout=seconds + 120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    return int(outs[0][0]), int(outs[1][0]), Store(data_dir / "sleepy-coder.sqlite3")


def test_server_and_learner_writing_together_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    seconds = float(os.environ.get("SLEEPY_CODER_CONCURRENCY_S", "10"))
    written, cycles, store = run_concurrent_writers(tmp_path, seconds)
    with store:
        counts = store.counts()
        assert written > 20 and cycles > 5
        assert counts["diagnostics"] == counts["suggestions"] == counts["accepted"] == written
        assert len(store.accepted_fixes()) == written
        assert len({e.fix_id for e in store.accepted_fixes()}) == written
        assert counts["learner_cycles"] == cycles
        assert all(c.outcome == "nothing-to-learn" for c in store.cycles(limit=cycles))


# ----------------------------------------------------------------------------- hot swap


def test_hot_swap_attaches_the_promoted_version_and_keeps_it_on_a_broken_one(
    seeded: tuple[Settings, list[str]],
) -> None:
    import shutil

    import torch

    from learner.model.hotswap import HotSwapError
    from learner.model.runtime import load_runtime

    settings, _ = seeded
    first = _promote_a_previous_version(settings)
    runtime = load_runtime(settings)
    swap = HotSwap()
    ids = runtime.tokenizer("fn main() {}", return_tensors="pt")["input_ids"]
    base = runtime.model(input_ids=ids).logits
    with Store.open(settings) as store:
        assert swap.load_active(settings, store, runtime) == first
        adapters = runtime._adapters
        assert adapters is not None and adapters.activate("struct-fields") is not None
        assert not torch.equal(runtime.model(input_ids=ids).logits, base)
        adapters.activate(None)
        assert swap.load_active(settings, store, runtime) == first  # unchanged: no reload
        broken = settings.adapters_dir / "broken-copy"
        shutil.copytree(store.adapter(first).path, broken)
        (broken / "share.safetensors").write_bytes(b"garbage")
        store.register_candidate("broken", route=SHARE_ROUTE, path=broken)
        store.promote("broken")
        with pytest.raises(HotSwapError, match=f"keeping {first}"):
            swap.load_active(settings, store, runtime)
        assert swap.attached_version(runtime) == first and runtime._adapters is adapters
        store.rollback("broken")
        assert swap.load_active(settings, store, runtime) == first
        store.rollback(first)
        assert swap.load_active(settings, store, runtime) is None
    assert torch.equal(runtime.model(input_ids=ids).logits, base)
