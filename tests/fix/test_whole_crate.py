"""Fixing a whole crate stage after stage (``fix --all``), with real cargo on fixture crates."""

from __future__ import annotations

from pathlib import Path

from learner.config import Settings
from learner.fix.pipeline import build_sources, check_path
from learner.fix.whole_crate import COMBINED_SOURCE, combined_rustc_candidate, fix_crate
from learner.records import Applicability, Edit, RustDiagnostic, Span
from tests.rust_fixtures import TYPE_THEN_BORROW_ERRORS, make_crate


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_mapping({"dataDir": str(tmp_path / "data"), "cacheDir": str(tmp_path / "cache")})


def test_type_errors_then_borrow_errors_are_fixed_until_the_crate_builds(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": TYPE_THEN_BORROW_ERRORS})
    settings = _settings(tmp_path)
    run = fix_crate(root, settings, build_sources(settings, ["rustc"]))
    assert run.fixed and run.reason == "the crate builds"
    assert [s.codes for s in run.steps] == [("E0308",), ("E0384", "E0382")]
    assert run.steps[1].source == COMBINED_SOURCE, "the borrow-check errors' suggestions go in together"
    text = (root / "src" / "main.rs").read_text()
    assert "half(n.try_into().unwrap())" in text and "s.clone()" in text and "let mut c" in text
    assert check_path(root, settings).errors == []


def test_a_crate_whose_error_has_no_verified_fix_stops_and_says_so(tmp_path: Path) -> None:
    root = make_crate(
        tmp_path / "c", {"src/main.rs": 'fn main() {\n    let a: i32 = "one";\n    println!("{a}");\n}\n'}
    )
    settings = _settings(tmp_path)
    before = (root / "src" / "main.rs").read_text()
    run = fix_crate(root, settings, build_sources(settings, ["rustc"]))
    assert not run.fixed and run.reason == "no error has a verified fix"
    assert [d.code for d in run.remaining] == ["E0308"] and run.steps == []
    assert (root / "src" / "main.rs").read_text() == before, "nothing unverified is written"


def _error(at: int, text: str, applicability: Applicability = Applicability.MACHINE_APPLICABLE) -> RustDiagnostic:
    span = Span(
        "src/main.rs", at, at + 1, 1, 1, 1, 2, suggested_replacement=text, suggestion_applicability=applicability
    )
    child = RustDiagnostic("help", "try this", spans=(span,))
    primary = Span("src/main.rs", at, at + 1, 1, 1, 1, 2, is_primary=True)
    return RustDiagnostic("error", "boom", "E0384", spans=(primary,), children=(child,))


def test_the_combined_candidate_takes_one_machine_applicable_suggestion_per_error_without_overlaps() -> None:
    combined = combined_rustc_candidate(
        [_error(10, "a"), _error(10, "b"), _error(30, "c"), _error(50, "d", Applicability.MAYBE_INCORRECT)]
    )
    assert combined is not None
    assert combined.edits == (Edit("src/main.rs", 10, 11, "a"), Edit("src/main.rs", 30, 31, "c"))
    assert "2 errors" in combined.title
    assert combined_rustc_candidate([_error(10, "a")]) is None, "one error: nothing to combine"
