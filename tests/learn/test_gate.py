"""The promotion gate: the pure decision on hand-made score tables, the split, and one gate run on the tiny model."""

from __future__ import annotations

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


def test_too_few_held_out_fixes_means_no_promotion_with_the_reason() -> None:
    decision = decide({"mutability": (Rate(0, 2), Rate(2, 2))}, ["mutability"], min_examples=3)
    assert not decision.promote and "too few held-out fixes of mutability to decide (2 < 3)" in decision.reason
    assert not decide({}, ["mutability"]).promote


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
        result = evaluate_candidate(
            settings, store, runtime, candidate, [ROUTE], GateConfig(bench_limit=0, max_new_tokens=32)
        )
        held = len([r for r in heldout_examples(settings) if r.route == ROUTE])
        assert held == len([f for f in fix_ids if is_held_out(f)])
        line = result.decision.as_json()["scores"][ROUTE]
        assert line["before"][1] == line["after"][1] == held
        # the same adapters before and after: never an improvement, so never promoted
        assert not result.decision.promote
        recorded = record_decision(store, candidate, result)
        assert recorded.status == "rejected" and recorded.metrics["gate"]["reason"] == result.decision.reason
        assert store.active_versions()[SHARE_ROUTE].version == active.version
