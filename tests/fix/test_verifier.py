"""The verifier and its degenerate-fix guard, on real rustc output."""

from __future__ import annotations

from pathlib import Path

from learner.config import Settings
from learner.fix.degenerate import degenerate_reason
from learner.fix.pipeline import check_path
from learner.records import Edit, FixCandidate
from tests.rust_fixtures import MISSING_DERIVE_LIB, MOVED_VALUE_BIN, make_crate

BODY = b'fn helper() -> i32 {\n    let a = 1;\n    a + 1\n}\n\nfn main() {\n    println!("{}", helper());\n}\n'


def _candidate(edits: tuple[Edit, ...]) -> FixCandidate:
    return FixCandidate(source="test", title="t", edits=edits, route="moved-value")


def test_deleting_an_item_is_degenerate() -> None:
    after = BODY.replace(b"fn helper() -> i32 {\n    let a = 1;\n    a + 1\n}\n", b"")
    assert "deletes fn helper" in (degenerate_reason({"f.rs": BODY}, {"f.rs": after}) or "")


def test_emptying_a_function_body_is_degenerate() -> None:
    after = BODY.replace(b'    println!("{}", helper());\n', b"")
    assert "empties the body of fn main" in (degenerate_reason({"f.rs": BODY}, {"f.rs": after}) or "")


def test_adding_todo_allow_or_unsafe_is_degenerate() -> None:
    for added in (b"    todo!();\n", b"    #[allow(unused)]\n    let _z = 0;\n", b"    unsafe {}\n"):
        after = BODY.replace(b"    a + 1\n", added + b"    a + 1\n")
        assert "adds" in (degenerate_reason({"f.rs": BODY}, {"f.rs": after}) or ""), added


def test_markers_inside_strings_and_comments_do_not_count() -> None:
    after = BODY.replace(
        b"    a + 1\n", b'    // todo!() later, unsafe is fine in comments\n    let _s = "unsafe";\n    a + 1\n'
    )
    assert degenerate_reason({"f.rs": BODY}, {"f.rs": after}) is None


def test_a_real_fix_is_not_degenerate() -> None:
    after = BODY.replace(b"let a = 1;", b"let a = 2;")
    assert degenerate_reason({"f.rs": BODY}, {"f.rs": after}) is None
    assert degenerate_reason({"f.rs": BODY}, {"f.rs": BODY}) == "the candidate changes nothing"


def test_rustc_suggestion_verifies_and_user_tree_is_untouched(tmp_path: Path, settings: Settings) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    session = check_path(root, settings)
    [error] = session.errors
    suggestion = error.suggestions[0]
    verdict = session.verifier.verify(_candidate(suggestion.edits), error)
    assert verdict.ok, verdict.reason
    assert (root / "src/main.rs").read_text() == MOVED_VALUE_BIN
    assert not (root / "target").exists(), "checks never use the crate's own target dir"


def test_fix_that_introduces_a_new_error_is_refused(tmp_path: Path, settings: Settings) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    session = check_path(root, settings)
    [error] = session.errors
    start = MOVED_VALUE_BIN.index("let t = s;")
    edit = Edit("src/main.rs", start, start + len("let t = s;"), "let t: i32 = s.clone();")
    verdict = session.verifier.verify(_candidate((edit,)), error)
    assert not verdict.ok
    assert "E0308" in verdict.reason


def test_fix_that_leaves_the_error_is_refused(tmp_path: Path, settings: Settings) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    session = check_path(root, settings)
    [error] = session.errors
    start = MOVED_VALUE_BIN.index('"hello"')
    edit = Edit("src/main.rs", start, start + len('"hello"'), '"hi"')
    verdict = session.verifier.verify(_candidate((edit,)), error)
    assert not verdict.ok and "still reported" in verdict.reason


def test_derive_fix_is_applied_on_the_type_definition(tmp_path: Path, settings: Settings) -> None:
    root = make_crate(tmp_path / "c", {"src/lib.rs": MISSING_DERIVE_LIB})
    session = check_path(root, settings)
    [error] = session.errors
    edit = Edit("src/lib.rs", 0, 0, "#[derive(Debug)]\n")
    assert session.verifier.verify(_candidate((edit,)), error).ok


def test_several_candidates_are_verified_at_once_each_in_its_own_scratch_copy(
    tmp_path: Path, settings: Settings
) -> None:
    import dataclasses
    import threading

    settings = dataclasses.replace(settings, verify_jobs=2)
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    session = check_path(root, settings)
    [error] = session.errors
    start = MOVED_VALUE_BIN.index("let t = s;")
    good = Edit("src/main.rs", start, start + len("let t = s;"), "let t = s.clone();")
    wrong_type = Edit("src/main.rs", start, start + len("let t = s;"), "let t: i32 = s.clone();")
    kept = Edit("src/main.rs", MOVED_VALUE_BIN.index('"hello"'), MOVED_VALUE_BIN.index('"hello"') + 7, '"hi"')
    candidates = [_candidate((e,)) for e in (good, wrong_type, kept)]
    verdicts = session.verifier.verify_all(candidates, error)
    assert [v.ok if v else None for v in verdicts] == [True, False, False]
    assert verdicts[1] is not None and "E0308" in verdicts[1].reason
    assert verdicts[2] is not None and "still reported" in verdicts[2].reason
    scratch = sorted(p.name for p in settings.scratch_dir.iterdir() if p.is_dir())
    assert len(scratch) == 2, scratch  # two copies, used side by side
    assert (root / "src/main.rs").read_text() == MOVED_VALUE_BIN
    cancelled = threading.Event()
    cancelled.set()
    assert session.verifier.verify_all(candidates, error, cancel=cancelled) == [None, None, None]
