"""The grader on the real toolchain: only a real, non-degenerate fix that removes the case's errors passes."""

from __future__ import annotations

from learner.config import Settings
from learner.eval.cases import EvalCase
from learner.eval.grader import changed_lines, grade, same_after_rustfmt

MOVED = 'fn main() {\n    let s = String::from("hi");\n    let t = s;\n    println!("{} {}", s, t);\n}\n'
MOVED_FIXED = 'fn main() {\n    let s = String::from("hi");\n    let t = s.clone();\n    println!("{} {}", s, t);\n}\n'


def _case(broken: str, fixed: str | None, codes: tuple[str, ...] = ("E0382",), crate_type: str = "bin") -> EvalCase:
    return EvalCase("t/case", "t", codes, crate_type, "2021", broken, fixed)


def test_a_correct_fix_passes_with_exact_match_and_edit_size(settings: Settings) -> None:
    result = grade(settings, _case(MOVED, MOVED_FIXED), MOVED_FIXED)
    assert result.passed, result.reason
    assert result.exact_match is True
    assert result.edit_size == result.ref_edit_size == 2


def test_the_unfixed_program_fails_because_its_error_is_still_reported(settings: Settings) -> None:
    result = grade(settings, _case(MOVED, MOVED_FIXED), MOVED)
    assert not result.passed
    assert "E0382" in result.reason and "E0382" in result.remaining_codes


def test_replacing_everything_with_an_empty_main_fails(settings: Settings) -> None:
    result = grade(settings, _case(MOVED, MOVED_FIXED), "fn main() {}\n")
    assert not result.passed
    assert result.reason.startswith("degenerate fix")


def test_deleting_the_erroneous_statement_is_degenerate(settings: Settings) -> None:
    deleted = 'fn main() {\n    let s = String::from("hi");\n    let t = s;\n}\n'
    result = grade(settings, _case(MOVED, MOVED_FIXED), deleted)
    assert not result.passed and "degenerate" in result.reason


def test_a_bin_case_without_main_is_graded_as_a_lib(settings: Settings) -> None:
    broken = "pub struct Holder { name: &str }\n"
    fixed = "pub struct Holder<'a> { name: &'a str }\n"
    case = _case(broken, fixed, codes=("E0106",))
    assert case.compile_as == "lib"
    result = grade(settings, case, fixed)
    assert result.passed, result.reason  # as a bin it would fail with E0601 (no main)


def test_exact_match_is_judged_after_rustfmt_and_edit_size_counts_changed_lines() -> None:
    assert same_after_rustfmt("fn main(){let x=1;}", "fn main() {\n    let x = 1;\n}\n")
    assert not same_after_rustfmt("fn main(){let x=1;}", "fn main() {\n    let x = 2;\n}\n")
    assert changed_lines("a\nb\nc\n", "a\nB\nc\n") == 2
