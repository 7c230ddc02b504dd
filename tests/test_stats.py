"""Statistics, continual-learning measures, case loading and the leakage guard: pure functions,
checked against values computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from learner.eval.cases import CaseFormatError, load_cases
from learner.eval.continual import accuracy_matrix, average_accuracy, average_forgetting, forgetting
from learner.eval.leakage import check_cases
from learner.rust.normalise import SourceIndex, normalise_rust
from learner.stats import (
    CaseSamples,
    mcnemar_exact,
    paired_comparison,
    pass_at_k,
    percentile,
    summarise,
    wilson_interval,
)


def test_wilson_interval_of_8_of_10_matches_hand_computation() -> None:
    # p=0.8, z=1.96: centre=(0.8+0.19208)/1.38415=0.71676, half=1.96*sqrt(0.016+0.009604)/1.38415=0.22656
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_stays_inside_unit_range_at_the_extremes() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=1e-4)


def test_pass_at_k_unbiased_estimator() -> None:
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(5, 4, 2) == 1.0  # fewer than k failures: some pair always contains a pass
    assert pass_at_k(3, 0, 3) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_exact_mcnemar_p_values() -> None:
    assert mcnemar_exact(1, 6) == pytest.approx(0.125)  # 2 * (1 + 7) / 128
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)


def test_paired_comparison_counts_flips_each_way() -> None:
    a = {"c1": True, "c2": True, "c3": False, "c4": False, "only_a": True}
    b = {"c1": True, "c2": False, "c3": True, "c4": False}
    cmp = paired_comparison(a, b)
    assert (cmp.both, cmp.neither, cmp.only_a, cmp.only_b, cmp.missing) == (1, 1, ("c2",), ("c3",), ("only_a",))
    assert cmp.p_value == 1.0


def test_summary_per_route_uses_per_case_rates_over_seeds() -> None:
    samples = [
        CaseSamples("a", "src", "r1", (True, False), (True, True)),
        CaseSamples("b", "src", "r1", (False, False), (False, True)),
        CaseSamples("c", "src", "r2", (False, False), (False, False)),
    ]
    by_route = summarise(samples, "route")
    assert by_route["r1"].pass_at_1.successes == pytest.approx(0.5)
    assert by_route["r1"].pass_at_k.successes == pytest.approx(1.5)
    assert by_route["r1"].any_seed.successes == pytest.approx(2.0)
    assert summarise(samples)["all"].pass_at_k.n == 3


def test_accuracy_matrix_average_accuracy_and_forgetting() -> None:
    steps = [{"a": 0.8}, {"a": 0.6, "b": 0.9}, {"a": 0.5, "b": 0.7, "c": 1.0}]
    matrix = accuracy_matrix(steps, ["a", "b", "c"])
    assert matrix == [[0.8, None, None], [0.6, 0.9, None], [0.5, 0.7, 1.0]]
    assert average_accuracy(matrix) == pytest.approx((0.5 + 0.7 + 1.0) / 3)
    assert forgetting(matrix) == {0: pytest.approx(0.3), 1: pytest.approx(0.2)}
    assert average_forgetting(matrix) == pytest.approx(0.25)
    assert forgetting(matrix[:1]) == {}


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cases_skip_invalid_and_compile_a_bin_without_main_as_lib(tmp_path: Path) -> None:
    rows = [
        {"id": "mine/a", "error_codes": ["E0308"], "crate_type": "bin", "broken": "fn main() {}\n", "fixed": None},
        {"id": "mine/b", "error_codes": ["E0106"], "crate_type": "bin", "broken": "struct S { r: &str }\n"},
        {"id": "mine/c", "error_codes": [], "crate_type": "bin", "broken": "fn main(){}", "valid_case": False,
         "problems": ["compiles as given"]},
        {"id": "d", "source_kind": "explained", "error_codes": ["E0382"], "crate_type": "bin",
         "broken": "fn main() {}\n", "fixed": "pub fn f() {}\n"},
    ]  # fmt: skip
    cases = load_cases([_write(tmp_path / "c.jsonl", rows)])
    assert [c.id for c in cases.cases] == ["mine/a", "mine/b", "d"]
    assert [c.compile_as for c in cases.cases] == ["bin", "lib", "lib"]
    assert cases.cases[2].source == "explained" and cases.cases[0].source == "mine"
    assert cases.skipped[0].id == "mine/c" and "compiles as given" in cases.skipped[0].reason
    assert len(load_cases([tmp_path / "c.jsonl"], include_invalid=True).cases) == 4


def test_a_malformed_case_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(CaseFormatError, match=r"bad.jsonl:1: .*'broken'"):
        load_cases([bad])
    with pytest.raises(CaseFormatError, match="cannot read"):
        load_cases([tmp_path / "missing.jsonl"])


def test_normalisation_ignores_comments_and_layout_but_not_strings() -> None:
    a = 'fn main() {\n    // say hi\n    let s = "a  b"; /* x */\n}\n'
    b = 'fn main(){ let s = "a  b"; }'
    assert normalise_rust(a) == normalise_rust(b)
    assert normalise_rust(b) != normalise_rust('fn main(){ let s = "a b"; }')


def test_leaked_case_is_refused_even_inside_a_training_prompt(tmp_path: Path) -> None:
    rows = [
        {"id": "t/leaked", "error_codes": ["E0382"], "broken": "fn main() { let s = String::new(); let t = s; s; }"},
        {"id": "t/clean", "error_codes": ["E0382"], "broken": "fn main() { let v = vec![1]; let w = v; v; }"},
    ]
    cases = load_cases([_write(tmp_path / "c.jsonl", rows)]).cases
    index = SourceIndex()
    index.add("Fix this:\n```rust\nfn main() {\n  let s = String::new();\n  let t = s;\n  s;\n}\n```")
    clean, report = check_cases(cases, index)
    assert [c.id for c in clean] == ["t/clean"]
    assert report.refused[0].id == "t/leaked" and "training data" in report.refused[0].reason
    assert math.isclose(len(report.as_meta()["refused"]), 1)


def test_protocol_steps_follow_the_order_families_were_learned(settings: object, tmp_path: Path) -> None:
    from learner.config import Settings
    from learner.eval.continual import protocol_steps
    from learner.store import Store

    assert isinstance(settings, Settings)
    with Store.open(settings) as store:
        for version, route in (("v1", "moved-value"), ("v2", "mutability"), ("v3", "moved-value"), ("n", "naive-lora")):
            store.register_candidate(version, route=route, path=tmp_path / version)
        steps = protocol_steps(store)
    assert [s.family for s in steps] == ["moved-value", "mutability"]
    assert steps[1].versions == {"moved-value": "v1", "mutability": "v2"}
    assert steps[1].paths == (str(tmp_path / "v1"), str(tmp_path / "v2"))


def test_percentile_is_the_nearest_rank_and_nan_for_no_values() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.95) == 5.0  # round(0.95 * 4) = 4: the largest
    assert percentile(values, 0.0) == 1.0
    assert math.isnan(percentile([], 0.5))


def test_wilson_bounds_are_exact_at_none_and_all() -> None:
    assert wilson_interval(0, 3)[0] == 0.0
    assert wilson_interval(3, 3)[1] == 1.0
