"""Two evaluations in one data home do not corrupt each other: each gives the results of a run alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from learner.config import Settings
from learner.store import Store
from tests.eval.test_runner import CASES

REPO = Path(__file__).resolve().parents[2]


def _cases(tmp_path: Path) -> Path:
    """The runner's three cases, four times over under distinct ids: long enough for two runs to overlap."""
    rows = [{**case, "id": f"{case['id']}-{n}"} for n in range(4) for case in CASES]
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(cases: Path, home: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "learner", "eval", "run", str(cases), "--strategy", "rustc", "--jobs", "2"]
    env = {**os.environ, "SLEEPY_CODER_HOME": str(home)}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _outcomes(home: Path) -> list[dict[str, bool]]:
    settings = Settings(data_dir=home / "data", cache_dir=home / "cache")
    with Store.open(settings) as store:
        return [{r.case_id: r.passed for r in store.eval_results(run.id)} for run in store.latest_runs(limit=10)]


def test_two_concurrent_runs_give_the_results_of_one_run_alone(tmp_path: Path) -> None:
    cases = _cases(tmp_path)
    alone = _run(cases, tmp_path / "alone")
    assert alone.wait(timeout=600) == 0, alone.communicate()[1]
    (expected,) = _outcomes(tmp_path / "alone")
    first, second = _run(cases, tmp_path / "shared"), _run(cases, tmp_path / "shared")
    for process in (first, second):
        assert process.wait(timeout=600) == 0, process.communicate()[1]
    together = _outcomes(tmp_path / "shared")
    assert len(together) == 2 and all(result == expected for result in together), (expected, together)
