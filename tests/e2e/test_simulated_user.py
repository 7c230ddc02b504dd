"""One simulated day and night through the real server, on the tiny model and a fixture crate.

The user makes the day's planned errors in their copy of the crate; rustc's offers that give
back their code are accepted, the rest rejected and fixed by hand (the server records that as
``edited``). The night is the real ``learnNow`` cycle (curriculum, training, gate); the tiny
model cannot earn a promotion, so the gate's decision is checked for its evidence and the
adapter is then promoted the way ``learn --promote`` does, while the server runs: its hot swap
must attach it, and the next day's model answers must come from it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from learner.config import Settings
from learner.eval.simulation.editor import Editor, wait_until
from learner.eval.simulation.user import SimulatedUser, UserSpec
from learner.learn.curriculum import load_training_set
from learner.learn.practice import load_practice
from learner.learn.reserved import example_site, load_reserved
from learner.store import Store
from tests.rust_fixtures import make_habits_registry

pytestmark = pytest.mark.timeout(600)


def _options(tiny_model_dir: Path) -> dict[str, object]:
    return {
        "model": str(tiny_model_dir),
        "attempts": 1,
        "candidates": 1,
        "maxNewTokens": 24,
        "learnSteps": 1,
        "learnExamples": 6,
        "learnFromDocs": False,
    }


def _promote_by_hand(user: SimulatedUser, tiny_model_dir: Path) -> str:
    """``learn --promote`` (no gate) in the user's data home; returns the new active version."""
    env = {**os.environ, "SLEEPY_CODER_HOME": str(user.home)}
    args = ["learn", "--promote", "--model", str(tiny_model_dir), "--steps", "1", "--per-route", "4", "--no-docs"]
    args += ["--max-tokens", "128", "--crate", str(user.crate_dir)]
    env["SLEEPY_CODER_SETTINGS"] = json.dumps(user.settings.as_mapping())
    done = subprocess.run([sys.executable, "-m", "learner", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with Store.open(user.settings) as store:
        [active] = store.active_versions(str(tiny_model_dir)).values()
    return active.version


def test_a_day_and_a_night_through_the_real_server(tmp_path: Path, tiny_model_dir: Path) -> None:
    registry = make_habits_registry(tmp_path / "registry")
    spec = UserSpec("habits-0.1.0", seed=0, registry=registry, days=2, per_day=7, habits=1)
    user = SimulatedUser(
        spec, tmp_path / "user", _options(tiny_model_dir), cache_dir=Settings().cache_dir, rustc_wait_s=4.0
    )
    state = user.prepare()
    assert [s.day for s in state.sites] == [1] * 7 + [2] * 7
    assert len({s.key for s in state.sites}) == 14, "one site per item: no two errors share an item"

    async def live() -> tuple[list, object, str, list]:
        editor = Editor(user.crate_dir, user.home, user.options, user.home / "server.log")
        await editor.start()
        try:
            day1 = await user.live_day(editor, 1)
            night = await user.night(editor, 1)
            version = await asyncio.get_running_loop().run_in_executor(None, _promote_by_hand, user, tiny_model_dir)
            await wait_until(lambda: editor.adapter_changes, 60, "the hot swap")
            day2 = await user.live_day(editor, 2)
        finally:
            await editor.stop()
        return day1, night, version, day2

    day1, night, version, day2 = asyncio.run(live())

    # Day 1: every error appeared, rustc's right fixes were accepted, the others fixed by hand.
    assert [r.site for r in day1] == [s.id for s in state.sites if s.day == 1]
    outcomes = [r.outcome for r in day1]
    assert "not-reproduced" not in outcomes, outcomes
    assert all(r.outcome == ("accepted" if r.right else "edited") for r in day1 if r.rustc_offers), outcomes
    # The night: the real cycle trained the day's route and its gate decided with evidence.
    assert night.outcome in ("promoted", "rejected"), night.message
    # Every route the day brought a fix of is learned (learn_min_new_fixes = 1), the habit among them.
    assert "mutability" in night.details["targets"], night.details
    assert set(night.details["targets"]) <= {r.route for r in day1}, night.details
    assert "reason" in night.details["gate"] and night.details["gate"]["scores"]
    # Tomorrow's sites were reserved, and never trained on or used as practice.
    reserved = load_reserved(user.settings)
    assert reserved == {s.key for s in state.sites if s.day == 2}
    with Store.open(user.settings) as store:
        sets = store.training_sets()
    trained = [row for s in sets for row in load_training_set(Path(s.path))]
    assert any(row.source == "store" for row in trained)
    assert not {example_site(row) for row in trained} & reserved
    practice = load_practice(user.settings)
    assert not {example_site(row) for row in practice} & reserved
    assert not {row.broken for row in practice} & {row.broken for row in trained}

    # Day 2: the server swapped the promoted adapter in, and the model answered with it.
    assert len(day2) == 7
    # Every decision is the server's own record: one outcome row per offer the user decided.
    both = [r.outcome for r in day1 + day2]
    with Store.open(user.settings) as store:
        recorded = [o.kind for o in store.outcomes()]
        kept = store.accepted_fixes()
    assert recorded.count("accepted") == both.count("accepted")
    assert recorded.count("edited") == both.count("edited")
    assert {"accepted", "edited"} <= set(both), both
    assert len(kept) == both.count("accepted") + both.count("edited")
    assert version.startswith("share-")
    assert not any("adapter share:" in r.model_note for r in day1), "day 1: the base model answered"
    learned = [r for r in day2 if r.route == "mutability" and not r.model_offered]
    assert learned and all("adapter share:mutability@" in r.model_note for r in learned), day2

    # The state on disk resumes after the last error: nothing left to live; a file a stopped run
    # left broken is the user's own code again.
    first = state.sites[0]
    (user.crate_dir / first.file).write_text(first.broken)
    again = SimulatedUser(spec, tmp_path / "user", _options(tiny_model_dir), cache_dir=Settings().cache_dir)
    again.prepare()
    assert again.next_day() is None
    assert (user.crate_dir / first.file).read_text() == (registry / spec.crate / first.file).read_text()
