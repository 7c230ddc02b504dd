"""Practice mutations: a fixed split of the user's crates by item, never trained on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from learner.config import Settings
from learner.learn.benchmark import BenchmarkGuard
from learner.learn.curriculum import CurriculumConfig, build_curriculum, load_training_set
from learner.learn.examples import TrainingExample
from learner.learn.practice import PRACTICE_PER_ROUTE, is_practice, load_practice, practice_path, write_practice
from learner.stats import sign_test_greater
from tests.rust_fixtures import make_crate

MODULES = 8


def _module(i: int) -> str:
    return f"""pub fn total(items: &[i32]) -> i32 {{
    let mut sum = {i};
    let name = String::from("n{i}");
    let copy = name.clone();
    for value in items.iter() {{
        sum += value;
    }}
    sum + copy.len() as i32 + name.len() as i32
}}
"""


def _example(origin: str, answer: str, broken: str = "b", source: str = "mutation") -> TrainingExample:
    messages = ({"role": "user", "content": "fix"},)
    return TrainingExample("mutability", messages, answer, source, 1.0, "src/lib.rs", broken, "f", origin=origin)


def test_only_mutants_of_the_users_crates_are_practice_and_each_item_lands_on_one_side() -> None:
    crate_mutants = [_example(f"crate:/home/u/app/src/lib.rs#{i}", f"fn f{i}() {{}}") for i in range(200)]
    held = [e for e in crate_mutants if is_practice(e)]
    assert 20 < len(held) < 70  # about one in five
    for example in held:  # another operator on the same item gives the same answer: same side
        assert is_practice(replace(example, broken="another mutant", operator="other"))
        moved = example.origin.replace("/home/u/app", "/tmp/clone-elsewhere")
        assert is_practice(replace(example, origin=moved))  # the split does not move with the crate
    docs = [replace(e, origin="docs:book/ch04") for e in held]
    assert not any(is_practice(e) for e in docs)
    assert not any(is_practice(replace(e, source="store")) for e in held)


def test_practice_sets_grow_to_a_cap_and_keep_their_order(settings: Settings) -> None:
    first = [_example(f"crate:/a/src/lib.rs#{i}", "x", broken=f"b{i}") for i in range(3)]
    write_practice(settings, {"mutability": first})
    more = [_example(f"crate:/a/src/lib.rs#{i}", "x", broken=f"b{i}") for i in range(2, 40)]
    write_practice(settings, {"mutability": more})
    kept = load_practice(settings, ["mutability"])
    assert [e.broken for e in kept] == [f"b{i}" for i in range(PRACTICE_PER_ROUTE)]
    practice_path(settings, "mutability").write_text("not json\n")
    assert load_practice(settings) == []  # an unreadable set is no evidence, not a failed night


def test_the_curriculum_never_trains_on_a_practice_item(settings: Settings, tmp_path: Path) -> None:
    files = {f"src/m{i}.rs": _module(i) for i in range(MODULES)}
    files["src/lib.rs"] = "".join(f"pub mod m{i};\n" for i in range(MODULES))
    root = make_crate(tmp_path / "app", files)
    config = CurriculumConfig(per_route=40, crates=(root,), use_docs=False, use_store=False, max_checks=400)
    result = build_curriculum(settings, config, leakage=BenchmarkGuard())
    practice = [e for rows in result.practice.values() for e in rows]
    training = [e for path in result.files.values() for e in load_training_set(path)]
    assert practice and training, result.stats
    assert all(is_practice(e) for e in practice) and not any(is_practice(e) for e in training)
    practiced_items = {(e.origin, e.answer) for e in practice}
    assert not practiced_items & {(e.origin, e.answer) for e in training}
    assert {e.broken for e in load_practice(settings)} == {e.broken for e in practice}


def test_a_full_training_set_does_not_stop_the_practice_set_from_filling(settings: Settings, tmp_path: Path) -> None:
    """One training example per route is the whole budget, yet the user's crate keeps being
    mutated until each route's practice set is full (or the crate runs out): the gate's evidence
    must not be capped by a frugal night."""
    files = {f"src/m{i}.rs": _module(i) for i in range(MODULES)}
    files["src/lib.rs"] = "".join(f"pub mod m{i};\n" for i in range(MODULES))
    root = make_crate(tmp_path / "app", files)
    config = CurriculumConfig(per_route=1, crates=(root,), use_docs=False, use_store=False, max_checks=400)
    result = build_curriculum(settings, config, leakage=BenchmarkGuard())
    assert all(len(rows) <= 1 for rows in result.examples.values())
    assert sum(len(rows) for rows in result.practice.values()) > sum(len(r) for r in result.examples.values())
    again = build_curriculum(settings, config, leakage=BenchmarkGuard())  # the next night: nothing new owed
    assert not any(again.practice.values()), "items already practice are not found twice"
    assert {e.broken for e in load_practice(settings)} == {e.broken for e in practice_of(result)}


def practice_of(result: Any) -> list[TrainingExample]:
    return [e for rows in result.practice.values() for e in rows]


def test_sign_test_is_one_sided_and_exact() -> None:
    assert sign_test_greater(5, 0) == 1 / 32
    assert sign_test_greater(3, 1) == 5 / 16
    assert sign_test_greater(0, 0) == 1.0
    assert sign_test_greater(0, 4) == 1.0
