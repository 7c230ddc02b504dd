"""The feedback watcher: exactly the ranges an accepted fix changed, followed through later edits."""

from __future__ import annotations

from pathlib import Path

from learner.records import Edit, FixCandidate, RustDiagnostic, Span, Verdict
from learner.store import KeptRange
from lsp_server.feedback import (
    FeedbackTracker,
    TextChange,
    Tracked,
    changed_span,
    item_files,
    layout,
    offset_at,
    shift,
    watched_files,
)
from lsp_server.fixes import Offer, regions_changed

MAIN = 'fn helper() {}\n\nfn main() {\n    let s = String::new();\n    let t = s;\n    println!("{s}");\n}\n'
INVENTORY = "pub struct Item {\n    pub n: u32,\n}\n"


def _offer(files: dict[str, str], edits: list[Edit], error_file: str, error_at: str) -> Offer:
    before = {f: t.encode() for f, t in files.items()}
    start = before[error_file].index(error_at.encode())
    span = Span(error_file, start, start + len(error_at), 1, 1, 1, 2, is_primary=True)
    diag = RustDiagnostic("error", "boom", "E0382", spans=(span,))
    after = dict(before)
    for file in {e.file for e in edits}:
        data = before[file]
        for e in sorted((e for e in edits if e.file == file), key=lambda e: e.byte_start, reverse=True):
            data = data[: e.byte_start] + e.new_text.encode() + data[e.byte_end :]
        after[file] = data
    candidate = FixCandidate("rustc", "rustc: fix", tuple(edits), "moved-value")
    regions = regions_changed(diag, tuple(edits), before, after)
    return Offer(candidate, Verdict(True, "compiles"), diag, Path("/c"), regions, before)


def _clone_fix() -> tuple[Offer, str]:
    at = MAIN.index("let t = s;") + len("let t = s")
    offer = _offer({"src/main.rs": MAIN}, [Edit("src/main.rs", at, at, ".clone()")], "src/main.rs", "s;")
    return offer, MAIN.replace("let t = s;", "let t = s.clone();")


def _accept(tracker: FeedbackTracker, offer: Offer, texts: dict[str, str | None], offer_id: str = "o1") -> None:
    files, order = watched_files(offer, lambda rel: f"file:///c/{rel}", lambda uri, rel: texts.get(rel))
    tracker.accepted(offer_id, files, order)


def _replace(tracker: FeedbackTracker, uri: str, old: str, new: str, before: str, after: str) -> list:
    """Send ``before -> after`` as one incremental change replacing ``old`` with ``new``."""
    start = before.index(old)
    line = before.count("\n", 0, start)
    col = start - (before.rfind("\n", 0, start) + 1)
    end_line = before.count("\n", 0, start + len(old))
    end_col = start + len(old) - (before.rfind("\n", 0, start + len(old)) + 1)
    return tracker.document_changed(uri, [TextChange((line, col), (end_line, end_col), new)], after)


def test_shift_moves_ranges_after_a_change_and_grows_the_ones_it_touches() -> None:
    r = Tracked(10, 20)
    assert not shift(r, 0, 2, 5) and (r.start, r.end) == (13, 23)  # before: moved
    assert not shift(r, 23, 23, 4) and (r.start, r.end) == (13, 23)  # right after: not an edit of it
    assert not shift(r, 13, 13, 1) and (r.start, r.end) == (14, 24)  # right before: moved
    assert shift(r, 15, 18, 1) and (r.start, r.end) == (14, 22)  # inside: touched, shrinks
    empty = Tracked(5, 5)
    assert shift(empty, 5, 5, 3) and (empty.start, empty.end) == (5, 8)  # a deleted spot typed into


def test_offsets_of_lsp_positions_count_code_units_of_the_encoding() -> None:
    text = 'a\nlet x = "🦀é"; y\n'
    y = text.index("y")
    assert offset_at(text, 1, 15, "utf-16") == y
    assert offset_at(text, 1, 18, "utf-8") == y
    assert offset_at(text, 1, 14, "utf-32") == y
    assert offset_at(text, 9, 0) == len(text)
    assert changed_span("abcdef", "abXYdef") == (2, 3, 4)


def test_layout_places_an_insertion_at_a_region_start_inside_the_region() -> None:
    data = INVENTORY.encode()
    text, [edit], [region] = layout(data, [Edit("inv.rs", 0, 0, "#[derive(Debug)]\n")], [(0, len(data))])
    assert text == "#[derive(Debug)]\n" + INVENTORY
    assert text[edit.start : edit.end] == "#[derive(Debug)]\n" and edit.original == ""
    assert text[region.start : region.end] == text


def test_editing_the_fixed_range_is_recorded_once_the_crate_compiles() -> None:
    tracker = FeedbackTracker()
    offer, fixed = _clone_fix()
    _accept(tracker, offer, {"src/main.rs": fixed})
    uri = "file:///c/src/main.rs"
    edited = fixed.replace("s.clone()", "s.to_owned()")
    assert _replace(tracker, uri, ".clone()", ".to_owned()", fixed, edited) == []
    error = (edited.index("s.to_owned"), edited.index("s.to_owned") + 3)
    assert tracker.crate_checked({uri: edited}, {uri: [error]}) == [], "not while its item has an error"
    assert tracker.crate_checked({uri: fixed}, {uri: []}) == [], "not from a check of other text"
    [outcome] = tracker.crate_checked({uri: edited}, {uri: []})
    assert (outcome.offer_id, outcome.kind) == ("o1", "edited")
    assert outcome.final_ranges == (KeptRange("src/main.rs", ".to_owned()"),)
    assert (
        outcome.final_code
        == 'fn main() {\n    let s = String::new();\n    let t = s.to_owned();\n    println!("{s}");\n}\n'
    )
    assert tracker.watching() == []


def test_a_second_fix_in_the_same_function_is_not_an_edit_of_the_first() -> None:
    tracker = FeedbackTracker()
    offer, fixed = _clone_fix()
    _accept(tracker, offer, {"src/main.rs": fixed})
    uri = "file:///c/src/main.rs"
    second = fixed.replace('println!("{s}");', 'println!("{s} {t}");')
    assert _replace(tracker, uri, '"{s}"', '"{s} {t}"', fixed, second) == []
    typed_before = "// note\n" + second
    assert tracker.document_changed(uri, [TextChange((0, 0), (0, 0), "// note\n")], typed_before) == []
    assert tracker.crate_checked({uri: typed_before}, {uri: []}) == []
    [watch] = tracker.watching(uri)
    assert not watch.touched and watch.files[0].edit_texts() == [".clone()"]
    tracker.window_closed("o1")
    assert tracker.watching() == [], "untouched when the window closes: the accept stands"


def test_undoing_the_fix_is_reverted_at_once() -> None:
    tracker = FeedbackTracker()
    offer, fixed = _clone_fix()
    _accept(tracker, offer, {"src/main.rs": fixed})
    [outcome] = _replace(tracker, "file:///c/src/main.rs", ".clone()", "", fixed, MAIN)
    assert outcome.kind == "reverted" and tracker.watching() == []


def test_an_accept_that_arrives_before_the_edit_waits_for_it() -> None:
    tracker = FeedbackTracker()
    offer, fixed = _clone_fix()
    _accept(tracker, offer, {"src/main.rs": MAIN})  # the editor has not reported the applied edit yet
    uri = "file:///c/src/main.rs"
    [watch] = tracker.watching(uri)
    assert not watch.files[0].active
    assert _replace(tracker, uri, "let t = s;", "let t = s.clone();", MAIN, fixed) == []
    assert watch.files[0].active and not watch.touched
    edited = fixed.replace(".clone()", ".to_string()")
    _replace(tracker, uri, ".clone()", ".to_string()", fixed, edited)
    [outcome] = tracker.crate_checked({uri: edited}, {uri: []})
    assert outcome.final_ranges == (KeptRange("src/main.rs", ".to_string()"),)


def test_the_fix_and_its_undo_in_one_notification_are_reverted() -> None:
    tracker = FeedbackTracker()
    offer, _ = _clone_fix()
    _accept(tracker, offer, {"src/main.rs": MAIN})  # the accept came first: the fix is not shown yet
    at = MAIN.split("\n").index("    let t = s;")
    column = len("    let t = s")
    changes = [
        TextChange((at, column), (at, column), ".clone()"),  # the fix, applied
        TextChange((at, column), (at, column + len(".clone()")), ""),  # and undone, in one didChange
    ]
    [outcome] = tracker.document_changed("file:///c/src/main.rs", changes, MAIN)
    assert outcome.kind == "reverted"


def test_a_cross_file_fix_is_watched_in_the_file_it_changed() -> None:
    tracker = FeedbackTracker()
    files = {"src/main.rs": MAIN, "src/inventory.rs": INVENTORY}
    offer = _offer(files, [Edit("src/inventory.rs", 0, 0, "#[derive(Debug)]\n")], "src/main.rs", "s;")
    derived = "#[derive(Debug)]\n" + INVENTORY
    _accept(tracker, offer, {"src/main.rs": MAIN, "src/inventory.rs": derived})
    uri = "file:///c/src/inventory.rs"
    edited = derived.replace("Debug", "Debug, Clone")
    assert _replace(tracker, uri, "Debug", "Debug, Clone", derived, edited) == []
    [outcome] = tracker.crate_checked({uri: edited}, {})
    assert outcome.kind == "edited"
    assert outcome.final_ranges == (KeptRange("src/inventory.rs", "#[derive(Debug, Clone)]\n"),)
    # The error's own item (unchanged), then the struct as the user left it.
    assert outcome.final_code.startswith("fn main() {") and "let t = s;" in outcome.final_code
    assert outcome.final_code.endswith("\n\n#[derive(Debug, Clone)]\npub struct Item {\n    pub n: u32,\n}\n")


def test_a_whole_document_change_is_located_by_diffing() -> None:
    tracker = FeedbackTracker()
    offer, fixed = _clone_fix()
    _accept(tracker, offer, {"src/main.rs": fixed})
    uri = "file:///c/src/main.rs"
    edited = fixed.replace("s.clone()", "s.clone_from()")
    assert tracker.document_changed(uri, [TextChange(None, None, edited)], edited) == []
    [outcome] = tracker.crate_checked({uri: edited}, {uri: []})
    assert outcome.final_ranges == (KeptRange("src/main.rs", ".clone_from()"),)


def test_changing_the_fix_and_back_keeps_the_accept() -> None:
    tracker = FeedbackTracker()
    offer, fixed = _clone_fix()
    _accept(tracker, offer, {"src/main.rs": fixed})
    uri = "file:///c/src/main.rs"
    edited = fixed.replace(".clone()", ".clon()")
    _replace(tracker, uri, ".clone()", ".clon()", fixed, edited)
    _replace(tracker, uri, ".clon()", ".clone()", edited, fixed)
    assert tracker.crate_checked({uri: fixed}, {uri: []}) == []
    [watch] = tracker.watching(uri)
    assert not watch.touched


def test_ignore_timer_does_not_override_a_decision() -> None:
    tracker = FeedbackTracker()
    assert tracker.shown("a") and not tracker.shown("a")
    tracker.rejected("a")
    assert not tracker.ignored("a")
    assert tracker.shown("b") and tracker.ignored("b")


def _reject(tracker: FeedbackTracker, offer: Offer, text: str, offer_id: str = "r1") -> bool:
    files, order = item_files(offer, lambda rel: f"file:///c/{rel}", lambda uri, rel: text)
    return tracker.rejected(offer_id, files, order, error_key="E0382@main") is not None


def test_a_rejected_fix_then_written_by_hand_is_the_users_own_fix() -> None:
    tracker = FeedbackTracker()
    offer, _ = _clone_fix()
    assert _reject(tracker, offer, MAIN)
    uri = "file:///c/src/main.rs"
    mine = MAIN.replace('println!("{s}");', 'println!("{t}");')
    assert _replace(tracker, uri, '"{s}"', '"{t}"', MAIN, mine) == [], "an edit is not yet a fix"
    assert tracker.crate_checked({uri: MAIN}, {uri: []}) == [], "not from a check of the old text"
    [outcome] = tracker.crate_checked({uri: mine}, {uri: []})
    assert (outcome.offer_id, outcome.kind) == ("r1", "edited")
    assert outcome.final_code == 'fn main() {\n    let s = String::new();\n    let t = s;\n    println!("{t}");\n}\n'
    assert tracker.watching() == []


def test_a_rejection_typed_back_or_left_alone_stays_a_rejection() -> None:
    tracker = FeedbackTracker()
    offer, _ = _clone_fix()
    _reject(tracker, offer, MAIN)
    uri = "file:///c/src/main.rs"
    typo = MAIN.replace("let t = s;", "let t = s;;")
    assert _replace(tracker, uri, "s;", "s;;", MAIN, typo) == []
    assert _replace(tracker, uri, "s;;", "s;", typo, MAIN) == [], "typed back: never 'reverted'"
    assert tracker.crate_checked({uri: MAIN}, {uri: []}) == []
    tracker.window_closed("r1")
    assert tracker.watching() == []


def test_one_hand_fix_per_error_and_none_when_another_offer_is_taken() -> None:
    tracker = FeedbackTracker()
    offer, fixed = _clone_fix()
    _reject(tracker, offer, MAIN, "r1")
    _reject(tracker, offer, MAIN, "r2")  # a second offer for the same error turned down
    assert [w.offer_id for w in tracker.watching()] == ["r2"]
    tracker.drop_rewrite("E0382@main")  # ... and then the user accepted a third one
    assert tracker.watching() == []
    # Rejected after another fix was already applied to the item: that code is not the user's own.
    assert not _reject(tracker, offer, fixed, "r3")
