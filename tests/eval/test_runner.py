"""End to end: three small cases through the editor's pipeline with the rustc strategy and the
model strategy (tiny random model), recorded in the store, compared, and reported as figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from learner.cli.app import app
from learner.config import Settings, bench_dir
from learner.eval.cases import load_cases
from learner.eval.reports import latest_per_strategy, write_report
from learner.eval.runner import run_eval
from learner.eval.strategies import StrategyUnavailable
from learner.learn.benchmark import default_guard, is_benchmark_source
from learner.store import Store

CASES = [
    {
        "id": "t/moved",
        "error_codes": ["E0382"],
        "crate_type": "bin",
        "edition": "2021",
        "broken": 'fn main() {\n    let s = String::from("hi");\n    let t = s;\n    println!("{} {}", s, t);\n}\n',
        "fixed": 'fn main() {\n    let s = String::from("hi");\n    let t = s.clone();\n'
        '    println!("{} {}", s, t);\n}\n',
    },
    {
        "id": "t/two",
        "error_codes": ["E0384", "E0382"],
        "crate_type": "bin",
        "edition": "2021",
        "broken": "fn main() {\n    let x = 5;\n    x = 6;\n    let v = vec![x];\n    let w = v;\n"
        '    println!("{:?} {:?}", v, w);\n}\n',
        "fixed": None,
    },
    {
        "id": "t/nomain",
        "error_codes": ["E0106"],
        "crate_type": "bin",
        "edition": "2021",
        "broken": "pub struct Holder {\n    pub name: &str,\n}\n",
        "fixed": "pub struct Holder<'a> {\n    pub name: &'a str,\n}\n",
    },
]


@pytest.fixture
def cases_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    return path


def test_rustc_strategy_fixes_all_three_cases_through_the_cli(cases_file: Path, settings: Settings) -> None:
    result = CliRunner().invoke(app, ["eval", str(cases_file), "--strategy", "rustc", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "run id: 1" in result.output and "pass@1" in result.output
    with Store.open(settings) as store:
        run = store.eval_run(1)
        results = {r.case_id: r for r in store.eval_results(1)}
    assert run.strategy == "rustc" and run.finished_at is not None and run.project_version.startswith("0.")
    assert run.meta["leakage"]["checked"] is True
    assert all(r.passed for r in results.values()), {k: r.reason for k, r in results.items()}
    assert "let mut x" in (results["t/two"].candidate or "")  # two errors fixed one after another
    assert results["t/nomain"].candidate and "src/lib.rs" in results["t/nomain"].candidate
    assert results["t/moved"].exact_match is True and results["t/two"].exact_match is None


def test_a_case_with_more_errors_than_steps_is_fixed_by_rustcs_suggestions_together(
    settings: Settings, tmp_path: Path
) -> None:
    """Six errors, MAX_STEPS fixes one at a time: only rustc's suggestions applied together, as
    fix --all does, can fix the whole program."""
    from learner.eval.runner import MAX_STEPS

    lines = [f'    let a{n} = 1;\n    a{n} = 2;\n    println!("{{a{n}}}");\n' for n in range(6)]
    case = {
        "id": "t/many",
        "error_codes": ["E0384"],
        "crate_type": "bin",
        "edition": "2021",
        "broken": "fn main() {\n" + "".join(lines) + "}\n",
        "fixed": None,
    }
    assert len(lines) > MAX_STEPS
    path = tmp_path / "many.jsonl"
    path.write_text(json.dumps(case) + "\n")
    with Store.open(settings) as store:
        outcome = run_eval(load_cases([path]), "rustc", settings, store, jobs=1)
        [result] = store.eval_results(outcome.run_id)
    assert result.passed, result.reason
    assert (result.candidate or "").count("let mut a") == 6


def test_model_strategy_runs_the_pipeline_on_the_tiny_model_and_records_why_it_failed(
    cases_file: Path, tiny_model_dir: Path
) -> None:
    settings = Settings(model=str(tiny_model_dir), max_new_tokens=12, attempts=2)
    settings.ensure_dirs()
    with Store.open(settings) as store:
        outcome = run_eval(load_cases([cases_file]), "model", settings, store, attempts=2, jobs=2)
        results = store.eval_results(outcome.run_id)
        run = store.eval_run(outcome.run_id)
    assert run.model == str(tiny_model_dir) and run.attempts == 2
    assert len(results) == 3
    for r in results:
        assert not r.passed
        assert "still reported" in r.reason and "no verified fix" in r.reason, r.reason
        assert 1 <= r.attempts_used <= 2


def test_pipeline_strategy_tries_rustc_first_and_the_model_only_where_rustc_has_nothing(
    cases_file: Path, tiny_model_dir: Path
) -> None:
    """The editor's order: the tiny model alone fixes none of these, rustc fixes all, so the pipeline
    passes every case, each with a rustc fix."""
    settings = Settings(model=str(tiny_model_dir), max_new_tokens=12, attempts=1)
    settings.ensure_dirs()
    with Store.open(settings) as store:
        outcome = run_eval(load_cases([cases_file]), "pipeline", settings, store, attempts=1, jobs=2)
        results = store.eval_results(outcome.run_id)
    assert len(results) == 3
    assert all(r.passed for r in results), [r.reason for r in results]


def test_adapter_strategies_fail_clearly_without_adapters(cases_file: Path, tiny_model_dir: Path) -> None:
    settings = Settings(model=str(tiny_model_dir), max_new_tokens=8)
    settings.ensure_dirs()
    with Store.open(settings) as store:
        for name in ("routed", "averaged", "naive-lora"):
            with pytest.raises(StrategyUnavailable, match="no adapters trained yet: run sleepy-coder learn"):
                run_eval(load_cases([cases_file]), name, settings, store)
        assert store.latest_runs(finished_only=False) == []


def test_unknown_strategy_and_missing_adapters_are_one_line_cli_errors(cases_file: Path, settings: Settings) -> None:
    result = CliRunner().invoke(app, ["eval", str(cases_file), "--strategy", "nope"])
    assert result.exit_code == 2 and "unknown strategy 'nope'" in result.output
    result = CliRunner().invoke(app, ["eval", "continual", str(cases_file)])
    assert result.exit_code == 2 and "no adapters trained yet" in result.output


def test_compare_and_report_after_two_runs(cases_file: Path, settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["eval", str(cases_file), "--strategy", "rustc"]).exit_code == 0
    with Store.open(settings) as store:
        run_id = store.start_eval_run("model", model="tiny", attempts=2)
        for case in CASES:
            store.record_eval_result(run_id, case_id=str(case["id"]), source="t", route="x", passed=False, reason="r")
        store.finish_eval_run(run_id)
    result = runner.invoke(app, ["eval", "compare", "1", str(run_id)])
    assert result.exit_code == 0, result.output
    assert "only A passes (3)" in result.output and "p = 0.25" in result.output

    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    import matplotlib.image as mpimg

    for name in ("strategies.png", "routes.png"):
        pixels = mpimg.imread(out / name)
        assert pixels.ndim == 3 and pixels.std() > 0
    summary = (out / "summary.md").read_text()
    assert "strategies.png" in summary and "| all | 3 |" in summary and "Leakage check ran" in summary
    assert "forgetting matrix omitted" in summary  # no continual runs yet: said, not drawn


def test_report_compares_strategies_only_on_the_same_case_set(settings: Settings, tmp_path: Path) -> None:
    def run(store: Store, strategy: str, cases: list[str], file: str) -> int:
        run_id = store.start_eval_run(strategy)
        for case in cases:
            store.record_eval_result(run_id, case_id=case, source="t", route="x", passed=True)
        store.finish_eval_run(run_id, meta={"case_files": [f"/bench/{file}"]})
        return run_id

    with Store.open(settings) as store:
        rustc_a = run(store, "rustc", ["a1", "a2", "a3"], "koans.jsonl")
        run(store, "model", ["b1"], "explain.jsonl")
        model_a = run(store, "model", ["a1", "a2", "a3"], "koans.jsonl")
        case_set, runs = latest_per_strategy(store)
        assert case_set is not None and case_set.name == "koans.jsonl (3 cases)"
        assert [r.id for r in runs] == [model_a, rustc_a], "the run on other cases is left out"
        pipeline_b = run(store, "pipeline", ["b1"], "explain.jsonl")
        case_set, runs = latest_per_strategy(store)
        assert case_set is not None and case_set.name == "explain.jsonl (1 cases)"
        assert [r.strategy for r in runs] == ["model", "pipeline"] and runs[1].id == pipeline_b
        write_report(store, tmp_path / "r")
    assert "Compared on one case set: explain.jsonl (1 cases)" in (tmp_path / "r" / "summary.md").read_text()


def test_report_without_runs_says_so(settings: Settings, tmp_path: Path) -> None:
    with Store.open(settings) as store:
        report = write_report(store, tmp_path / "r")
    assert [p.name for p in report.files] == ["summary.md"]
    assert any("no finished evaluation runs" in n for n in report.notes)


def test_report_plots_the_loss_curves_and_parameters_a_learning_run_recorded(
    settings: Settings, tmp_path: Path
) -> None:
    share = tmp_path / "share-v1"
    share.mkdir()
    training = {
        "phase0": {"trait-bound": {"losses": [0.4, 0.2, 0.1]}},
        "phase2": {"moved-value": {"losses": [0.9, 0.7, 0.6]}},
    }
    (share / "training.json").write_text(json.dumps(training))
    naive = tmp_path / "naive-v1"
    naive.mkdir()
    (naive / "training.json").write_text(json.dumps({"order": ["a", "b"], "losses": {"a": [1.0, 0.5], "b": [0.8]}}))
    with Store.open(settings) as store:
        store.register_candidate(
            "share-v1",
            route="share",
            path=share,
            metrics={"parameters": {"trait-bound": 8664, "moved-value": 4332}, "lora_equivalent_parameters": 1081344},
        )
        store.register_candidate("naive-v1", route="naive-lora", path=naive, metrics={"kind": "naive-lora"})
        report = write_report(store, tmp_path / "r")
    assert (tmp_path / "r" / "training.png") in report.files
    import matplotlib.image as mpimg

    assert mpimg.imread(tmp_path / "r" / "training.png").std() > 0
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "| share-v1 | candidate | moved-value | 4,332 | 1,081,344 (250x) |" in summary
    assert not any("loss plot omitted" in n or "parameter summary omitted" in n for n in report.notes)


@pytest.mark.skipif(bench_dir() is None, reason="../shared/bench is not present")
def test_shared_benchmark_loads_and_its_sources_are_recognised() -> None:
    bench = bench_dir()
    assert bench is not None
    koans = load_cases([bench / "sleepy_koans.jsonl"])
    assert len(koans.cases) + len(koans.skipped) == 42 and len(koans.skipped) == 4
    assert default_guard().available
    assert is_benchmark_source(koans.cases[0].broken)
    assert is_benchmark_source("// a prompt\n" + koans.cases[0].broken.replace(" ", "\n"))
    assert not is_benchmark_source("fn totally_new_function(x: u64) -> u64 { x.wrapping_mul(31) + 7 }")
