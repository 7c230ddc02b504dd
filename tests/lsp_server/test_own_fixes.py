"""The user's own fix, wherever in the file: the changed item (an import: its block) before and after."""

from __future__ import annotations

from learner.records import RustDiagnostic, Span
from lsp_server.own_fixes import PendingFix, still_reported, written_fix

BEFORE = """use std::fmt;

pub fn size(map: &HashMap<u8, u8>) -> usize {
    map.len()
}

pub fn other() {}
"""


def _pending(before: str = BEFORE) -> PendingFix:
    span = Span("src/lib.rs", 30, 37, 3, 3, 18, 25)
    diag = RustDiagnostic(
        level="error", message="cannot find type `HashMap` in this scope", code="E0412", spans=(span,)
    )
    return PendingFix("o-1", diag, "file:///w/src/lib.rs", "src/lib.rs", before, "2021", "")


def test_an_added_import_is_recorded_with_the_import_block_it_joined() -> None:
    now = BEFORE.replace("use std::fmt;\n", "use std::fmt;\nuse std::collections::HashMap;\n")
    fix = written_fix(_pending(), now)
    assert fix is not None
    assert fix.before == "use std::fmt;\n" and fix.after == "use std::fmt;\nuse std::collections::HashMap;\n"
    assert (fix.byte_start, fix.byte_end) == (0, len("use std::fmt;\n"))


def test_a_files_first_import_comes_with_the_item_after_it() -> None:
    before = BEFORE.replace("use std::fmt;\n\n", "")
    now = "use std::collections::HashMap;\n\n" + before
    fix = written_fix(_pending(before), now)
    assert fix is not None and fix.before.startswith("pub fn size(") and fix.before.strip()
    assert fix.after == "use std::collections::HashMap;\n\n" + fix.before


def test_a_change_inside_an_item_is_recorded_as_that_item() -> None:
    now = BEFORE.replace("pub fn other() {}", "pub fn other() -> u8 {\n    1\n}")
    fix = written_fix(_pending(), now)
    assert fix is not None and fix.before == "pub fn other() {}\n"
    assert fix.after == "pub fn other() -> u8 {\n    1\n}\n"
    assert BEFORE.encode()[fix.byte_start : fix.byte_end].decode() == fix.before


def test_nothing_changed_or_a_rewrite_of_the_file_is_no_fix() -> None:
    assert written_fix(_pending(), BEFORE) is None
    huge = "".join(f"pub fn f{i}() {{}}\n" for i in range(400))
    assert written_fix(_pending(), BEFORE.replace("pub fn other() {}\n", huge)) is None


def test_the_error_is_still_there_when_its_code_and_message_are() -> None:
    pending = _pending()
    moved = RustDiagnostic(level="error", message=pending.diagnostic.message, code="E0412")
    assert still_reported(pending, [moved])  # its position moved with an edit above it
    other = RustDiagnostic(level="error", message="cannot find type `BTreeMap` in this scope", code="E0412")
    assert not still_reported(pending, [other])
