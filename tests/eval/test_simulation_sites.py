"""The simulated user's plan: real errors at distinct items, habits weighted, the same plan for the same seed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from learner.config import Settings
from learner.eval.cases import CrateSource
from learner.eval.sandbox import write_crate_case
from learner.eval.simulation.sites import ErrorSite, PlanError, assign_days, choose_habits, plan_sites, weighted_order
from tests.rust_fixtures import make_habits_registry


def _site(i: int, route: str) -> ErrorSite:
    return ErrorSite(f"s{i}", 0, "src/lib.rs", "op", i, route, ("E0000",), f"fn f{i}", f"k{i}", "")


def test_weighted_order_is_a_permutation_that_favours_heavy_items() -> None:
    order = weighted_order([1.0] * 50 + [4.0] * 50, random.Random(1))
    assert sorted(order) == list(range(100))
    first_half = order[:50]
    assert sum(i >= 50 for i in first_half) > 30  # the heavy half comes first more often


def test_habits_are_drawn_among_routes_with_enough_sites() -> None:
    counts = {"mutability": 9, "moved-value": 7, "unresolved-name": 1}
    habits = choose_habits(counts, 1, minimum=5, rng=random.Random(0))
    assert habits in (["mutability"], ["moved-value"])
    assert choose_habits({"a": 1, "b": 2}, 1, minimum=5, rng=random.Random(0)) == ["b"]


def test_days_get_their_share_and_habit_routes_most_of_it() -> None:
    pool = [_site(i, "mutability" if i % 4 == 0 else f"r{i % 4}") for i in range(80)]
    plan = assign_days(pool, ["mutability"], days=4, per_day=5, seed=3)
    assert [s.day for s in plan] == [d for d in range(1, 5) for _ in range(5)]
    assert len({s.id for s in plan}) == 20
    assert sum(s.route == "mutability" for s in plan) > 20 / 4  # above its quarter of the pool


def test_a_plan_is_real_errors_at_distinct_items_and_the_same_for_the_same_seed(tmp_path: Path) -> None:
    registry = make_habits_registry(tmp_path / "registry")
    source = registry / "habits-0.1.0"
    crate = tmp_path / "crate"
    write_crate_case(crate, CrateSource(registry, "habits-0.1.0", "src/lib.rs"), (source / "src/lib.rs").read_text())
    settings = Settings(model_enabled=False, cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    files = ["src/counters.rs", "src/lib.rs"]
    plan = plan_sites(settings, crate, files, seed=0, days=2, per_day=3, habits=1)
    assert len(plan.sites) == 6 and len({s.key for s in plan.sites}) == 6
    assert all(s.codes and s.broken != (crate / s.file).read_text() for s in plan.sites)
    assert (crate / "src/lib.rs").read_text() == (source / "src/lib.rs").read_text(), "the crate is not modified"
    again = plan_sites(settings, crate, files, seed=0, days=2, per_day=3, habits=1)
    assert [s.id for s in again.sites] == [s.id for s in plan.sites]
    with pytest.raises(PlanError, match="error sites"):
        plan_sites(settings, crate, files, seed=0, days=50, per_day=10, max_checks=5)


def test_the_user_takes_an_import_anywhere_among_the_imports_but_nothing_else() -> None:
    from learner.eval.simulation.user import means_the_same

    meant = "use std::fmt;\nuse std::ops::Deref;\n\nfn f() -> u32 {\n    1\n}\n"
    moved = "use std::ops::Deref;\nuse std::fmt;\n\nfn f() -> u32 {\n    1\n}\n"
    assert means_the_same(moved, meant)
    assert means_the_same("use std::fmt;\nuse std::ops::Deref;\nfn f() -> u32 { 1 }\n", meant)
    assert not means_the_same("use std::fmt;\nuse core::ops::Deref;\n\nfn f() -> u32 {\n    1\n}\n", meant)
    assert not means_the_same("use std::fmt;\nuse std::ops::Deref;\n\nfn f() -> u32 {\n    2\n}\n", meant)
