"""Choosing among verified candidates: duplicates dropped, smallest edit first, then confidence."""

from __future__ import annotations

from learner.fix.ranking import Scored, changed_lines, edits_key, fix_title, rank, unique
from learner.records import Edit, FixCandidate


def _candidate(*edits: Edit) -> FixCandidate:
    return FixCandidate("model", "fix", edits, "moved-value")


def test_the_same_edits_in_another_order_are_one_fix() -> None:
    a, b = Edit("m.rs", 0, 1, "x"), Edit("m.rs", 5, 6, "y")
    assert edits_key([a, b]) == edits_key([b, a])
    kept = unique([_candidate(a, b), _candidate(b, a), _candidate(a)])
    assert [c.edits for c in kept] == [(a, b), (a,)]


def test_changed_lines_counts_lines_removed_and_added_in_every_file() -> None:
    before = {"a.rs": b"fn a() {\n    1\n}\n", "b.rs": b"x\n"}
    after = {"a.rs": b"fn a() {\n    2\n}\n", "b.rs": b"x\ny\n"}
    assert changed_lines(before, after) == 3  # one line replaced in a.rs (2), one added in b.rs (1)
    assert changed_lines(before, before) == 0


def test_smallest_edit_wins_and_confidence_breaks_ties() -> None:
    small_unsure = Scored(_candidate(Edit("m.rs", 0, 1, "a")), 2, -3.0)
    small_sure = Scored(_candidate(Edit("m.rs", 0, 1, "b")), 2, -0.5)
    big_sure = Scored(_candidate(Edit("m.rs", 0, 1, "c")), 9, -0.1)
    unknown = Scored(_candidate(Edit("m.rs", 0, 1, "d")), 2, None)
    assert rank([big_sure, small_unsure, unknown, small_sure]) == [small_sure, small_unsure, unknown, big_sure]


def test_a_verified_fix_is_titled_by_what_it_changes() -> None:
    before = {"m.rs": b"fn main() {\n    let counter = 0;\n    counter += 1;\n}\n"}
    after = {"m.rs": b"fn main() {\n    let mut counter = 0;\n    counter += 1;\n}\n"}
    assert fix_title(before, after) == "sleepy-coder: `let counter = 0;` -> `let mut counter = 0;`"
    derive = fix_title({"i.rs": b"struct A;\n"}, {"i.rs": b"#[derive(Debug)]\nstruct A;\n"})
    assert derive == "sleepy-coder: add `#[derive(Debug)]`"
    two = fix_title({"m.rs": b"a\nb\n"}, {"m.rs": b"x\ny\n"})
    assert two == "sleepy-coder: `a` -> `x` (+1 more line)"
