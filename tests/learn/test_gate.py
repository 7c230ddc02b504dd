"""The promotion gate: the pure decision on hand-made score tables, the split, and one gate run on the tiny model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from learner.learn.examples import TrainingExample
from learner.learn.gate import (
    GateConfig,
    answer_fixes,
    decide,
    evaluate_candidate,
    heldout_examples,
    is_held_out,
    record_decision,
)
from learner.learn.practice import write_practice
from learner.model.runtime import load_runtime
from learner.records import SHARE_ROUTE
from learner.stats import Rate
from learner.store import Store
from tests.learn.test_daemon import ROUTE, _promote_a_previous_version, seeded  # noqa: F401 - fixture


def test_promotes_when_the_route_improves_and_nothing_regresses() -> None:
    scores = {"mutability": (Rate(2, 10), Rate(6, 10)), "borrow": (Rate(5, 10), Rate(4, 10))}
    decision = decide(scores, ["mutability"])
    assert decision.promote and "mutability 20.0%" in decision.reason


def test_refuses_when_the_route_does_not_improve() -> None:
    decision = decide({"mutability": (Rate(5, 10), Rate(5, 10))}, ["mutability"])
    assert not decision.promote and "mutability did not improve" in decision.reason


def test_refuses_when_another_route_falls_below_its_interval() -> None:
    scores = {"mutability": (Rate(2, 10), Rate(6, 10)), "borrow": (Rate(9, 10), Rate(2, 10))}
    decision = decide(scores, ["mutability"])
    assert not decision.promote and "borrow regressed beyond its interval" in decision.reason


def test_a_drop_inside_the_interval_is_not_a_regression() -> None:
    scores = {"mutability": (Rate(2, 10), Rate(6, 10)), "bench:mutability": (Rate(3, 4), Rate(2, 4))}
    assert decide(scores, ["mutability"]).promote


def test_a_line_at_zero_before_and_after_is_no_regression() -> None:
    # 0/3 -> 0/3 on the benchmark slice: the interval's lower bound is exactly 0, not 5e-17.
    scores = {"mutability": (Rate(1, 4), Rate(3, 4)), "bench:mutability": (Rate(0, 3), Rate(0, 3))}
    decision = decide(scores, ["mutability"])
    assert decision.promote, decision.reason


def test_too_few_held_out_fixes_means_no_promotion_with_the_reason() -> None:
    decision = decide({"mutability": (Rate(0, 2), Rate(2, 2))}, ["mutability"], min_examples=3)
    assert not decision.promote and "too few held-out fixes of mutability to decide (2 < 3)" in decision.reason
    assert not decide({}, ["mutability"]).promote


def _pairs(gained: int, lost: int, both: int = 0, neither: int = 0) -> list[tuple[bool, bool]]:
    return [(False, True)] * gained + [(True, False)] * lost + [(True, True)] * both + [(False, False)] * neither


def _practice_rates(pairs: list[tuple[bool, bool]]) -> tuple[Rate, Rate]:
    return Rate(sum(b for b, _ in pairs), len(pairs)), Rate(sum(a for _, a in pairs), len(pairs))


def test_without_held_out_fixes_a_practice_gain_beyond_noise_promotes() -> None:
    pairs = _pairs(gained=6, lost=0, both=3, neither=7)
    scores = {"mutability": (Rate(0, 1), Rate(1, 1)), "practice:mutability": _practice_rates(pairs)}
    decision = decide(scores, ["mutability"], paired={"practice:mutability": pairs})
    assert decision.promote, decision.reason
    assert "practice mutability +6/-0 of 16 (one-sided p = 0.016)" in decision.reason


def test_a_practice_gain_inside_the_noise_does_not_promote() -> None:
    pairs = _pairs(gained=3, lost=1, neither=12)  # one-sided sign test p = 5/16
    scores = {"practice:mutability": _practice_rates(pairs)}
    decision = decide(scores, ["mutability"], paired={"practice:mutability": pairs})
    assert not decision.promote
    assert "0 held-out fixes (< 3) and the practice mutability +3/-1 of 16 (one-sided p = 0.312)" in decision.reason


def test_the_users_own_held_out_fixes_outweigh_practice() -> None:
    pairs = _pairs(gained=8, lost=0, neither=8)
    scores = {"mutability": (Rate(3, 4), Rate(2, 4)), "practice:mutability": _practice_rates(pairs)}
    decision = decide(scores, ["mutability"], paired={"practice:mutability": pairs})
    assert not decision.promote and "mutability did not improve (75.0% (3/4)" in decision.reason


def test_a_target_without_evidence_neither_gains_nor_blocks_another_targets_gain() -> None:
    mine = _pairs(gained=7, lost=0, neither=9)
    scores = {"practice:mutability": _practice_rates(mine), "trait-bound": (Rate(0, 1), Rate(0, 1))}
    decision = decide(scores, ["mutability", "trait-bound"], paired={"practice:mutability": mine})
    assert decision.promote, decision.reason
    assert "no evidence of a gain: too few held-out fixes of trait-bound to decide (1 < 3)" in decision.reason
    assert not decide({}, ["mutability", "trait-bound"]).promote, "no gain anywhere: nothing to promote"


def test_a_target_that_measurably_got_worse_blocks_another_targets_gain() -> None:
    mine = _pairs(gained=7, lost=0, neither=9)
    worse = _pairs(gained=0, lost=6, neither=10)
    paired = {"practice:mutability": mine, "practice:moved-value": worse}
    scores = {"practice:mutability": _practice_rates(mine), "practice:moved-value": _practice_rates(worse)}
    decision = decide(scores, ["mutability", "moved-value"], paired=paired)
    assert not decision.promote and "breaks more than it fixes, beyond noise" in decision.reason
    fell = {"practice:mutability": _practice_rates(mine), "moved-value": (Rate(3, 4), Rate(1, 4))}
    decision = decide(fell, ["mutability", "moved-value"], paired={"practice:mutability": mine})
    assert not decision.promote and "moved-value did not improve (75.0% (3/4)" in decision.reason


def test_several_targets_share_the_false_gain_budget() -> None:
    pairs = _pairs(gained=5, lost=0, neither=11)  # one-sided p = 1/32 = 0.031
    scores = {"practice:mutability": _practice_rates(pairs)}
    alone = decide(scores, ["mutability"], paired={"practice:mutability": pairs})
    assert alone.promote, alone.reason
    two = decide(scores, ["mutability", "trait-bound"], paired={"practice:mutability": pairs})
    assert not two.promote and "(needs p <= 0.025)" in two.reason


def test_practice_of_another_route_is_a_regression_check() -> None:
    other = _pairs(gained=0, lost=9, both=1)
    mine = _pairs(gained=6, lost=0, neither=4)
    scores = {"practice:mutability": _practice_rates(mine), "practice:moved-value": _practice_rates(other)}
    paired = {"practice:mutability": mine, "practice:moved-value": other}
    decision = decide(scores, ["mutability"], paired=paired)
    assert not decision.promote and "practice:moved-value regressed beyond its interval" in decision.reason


def test_held_out_split_is_deterministic_and_about_one_in_five() -> None:
    ids = [f"fix{i:04d}" for i in range(2000)]
    held = [i for i in ids if is_held_out(i)]
    assert held == [i for i in ids if is_held_out(i)]
    assert 300 < len(held) < 500


def test_answer_counts_only_when_it_yields_the_users_code() -> None:
    row = TrainingExample(
        route="mutability", messages=(), answer="", source="store", weight=1.0, file="main.rs",
        broken="fn main() { let x = 1; x = 2; }\n", fixed="fn main() { let mut x = 1; x = 2; }\n",
    )  # fmt: skip
    assert answer_fixes(row, "```rust\nfn main() {\n    let mut x = 1; x = 2;\n}\n```")
    assert not answer_fixes(row, "```rust\nfn main() { let x = 1; }\n```")
    assert not answer_fixes(row, "no code at all")


def test_gate_run_on_the_tiny_model_records_scores_and_decision(
    seeded: tuple,  # noqa: F811
) -> None:
    settings, fix_ids = seeded
    _promote_a_previous_version(settings)  # an active set: "before" uses it
    with Store.open(settings) as store:
        active = store.active_versions()[SHARE_ROUTE]
        store.register_candidate("cand", route=SHARE_ROUTE, path=Path(active.path), parent_version=active.version)
        candidate = store.adapter("cand")
        runtime = load_runtime(settings)
        practice = [
            replace(e, source="mutation", origin=f"crate:/u/src/m{i}.rs")
            for i, e in enumerate(heldout_examples(settings)[:2])
        ]
        write_practice(settings, {ROUTE: practice})
        result = evaluate_candidate(
            settings, store, runtime, candidate, [ROUTE], GateConfig(bench_limit=0, max_new_tokens=32)
        )
        practice_line = result.decision.as_json()["scores"][f"practice:{ROUTE}"]
        assert practice_line["before"][1] == practice_line["after"][1] == len(practice)
        held = len([r for r in heldout_examples(settings) if r.route == ROUTE])
        assert held == len([f for f in fix_ids if is_held_out(f)])
        line = result.decision.as_json()["scores"][ROUTE]
        assert line["before"][1] == line["after"][1] == held
        # the same adapters before and after: never an improvement, so never promoted
        assert not result.decision.promote
        recorded = record_decision(store, candidate, result)
        assert recorded.status == "rejected" and recorded.metrics["gate"]["reason"] == result.decision.reason
        assert store.active_versions()[SHARE_ROUTE].version == active.version
