"""The gate's benchmark slice: the evaluation harness scores a route's first cases for the learner's gate,
which receives it as a plugged-in scorer (the learner never imports the evaluation)."""

from __future__ import annotations

import json
from pathlib import Path

from learner.config import Settings
from learner.eval.gate_slice import benchmark_slice
from learner.learn.gate import GateConfig
from learner.model.runtime import load_runtime
from learner.store import Store
from tests.eval.test_runner import CASES


def test_the_slice_runs_only_the_routes_cases_and_records_a_gate_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CASES))
    settings = Settings(model=str(tiny_model_dir), data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    settings.ensure_dirs()
    config = GateConfig(bench_limit=4, bench_dirs=(bench,), max_new_tokens=16, bench_scorer=benchmark_slice)
    runtime = load_runtime(settings)
    with Store.open(settings) as store:
        rate = benchmark_slice(settings, store, runtime, "moved-value", (), config)
        assert rate is not None and rate.n == 1  # t/moved only: t/two's primary code is E0384
        assert benchmark_slice(settings, store, runtime, "trait-bound", (), config) is None  # no case of it
        [run] = store.latest_runs(limit=5)
        assert run.meta.get("gate") is True and run.strategy == "model+hints"
        assert [r.case_id for r in store.eval_results(run.id)] == ["t/moved"]
    off = GateConfig(bench_limit=0, bench_dirs=(bench,), bench_scorer=benchmark_slice)
    with Store.open(settings) as store:
        assert benchmark_slice(settings, store, runtime, "moved-value", (), off) is None
