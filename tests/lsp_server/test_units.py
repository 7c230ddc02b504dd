"""Plain unit tests of the server's helpers: positions, code matching, region tracking, adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from learner.records import Edit, RustDiagnostic, Span
from lsp_server import convert
from lsp_server.adapters import change_between
from lsp_server.fixes import regions_changed, shifted
from lsp_server.server import crate_guess, settings_section

CRAB_LINE = 'let x = "🦀é"; y'  # y: character 14; UTF-16 unit 15 (the crab is 2); UTF-8 byte 18


@pytest.mark.parametrize(("encoding", "expected"), [("utf-16", 15), ("utf-8", 18), ("utf-32", 14)])
def test_rustc_character_column_becomes_client_units(encoding: str, expected: int) -> None:
    position = convert.char_position(["fn a() {}", CRAB_LINE], 2, 15, encoding)
    assert (position.line, position.character) == (1, expected)


@pytest.mark.parametrize(("encoding", "expected"), [("utf-16", 15), ("utf-8", 18)])
def test_byte_offset_becomes_client_units(encoding: str, expected: int) -> None:
    data = ("fn a() {}\r\n" + CRAB_LINE + "\n").encode()
    offset = data.index(b"y")
    position = convert.byte_position(data, offset, encoding)
    assert (position.line, position.character) == (1, expected)


def test_positions_past_the_text_are_clamped() -> None:
    position = convert.char_position(["ab"], 9, 40, "utf-16")
    assert (position.line, position.character) == (0, 2)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("E0382", "E0382"), ("rustc(E0382)", "E0382"), ("e0308", "E0308"), ("unused_variables", None), (382, None)],
)
def test_error_codes_from_rustc_and_rust_analyzer_are_recognised(code: object, expected: str | None) -> None:
    assert convert.error_code(code) == expected


def _diag(line: int, col: int, code: str = "E0382") -> RustDiagnostic:
    span = Span("src/main.rs", 0, 1, line, line, col, col + 1, is_primary=True)
    return RustDiagnostic(level="error", message="boom", code=code, spans=(span,))


def _range(line: int, a: int, b: int) -> types.Range:
    return types.Range(start=types.Position(line=line, character=a), end=types.Position(line=line, character=b))


def test_request_context_maps_to_server_errors_by_code_and_range() -> None:
    sources = convert.Sources(Path("/c"), {"src/main.rs": b"a\nbbbbbbbbbb\ncccccccccc\n"})
    first, second = _diag(2, 3), _diag(3, 5, "E0308")
    elsewhere = _range(0, 0, 0)
    # rust-analyzer's own range for the same E0308, and a different code on the same spot.
    theirs = types.Diagnostic(range=_range(2, 2, 9), message="mismatched types", code="rustc(E0308)")
    other = types.Diagnostic(range=_range(1, 0, 9), message="x", code="E0599")
    chosen = convert.requested([first, second], sources, elsewhere, [theirs, other], "utf-16")
    assert chosen == [second]
    assert convert.requested([first, second], sources, _range(1, 2, 2), [], "utf-16") == [first]


def test_model_action_data_round_trips_and_rejects_foreign_data() -> None:
    diagnostic = types.Diagnostic(range=_range(0, 0, 1), message="m")
    action = convert.model_action("moved-value", diagnostic, "file:///a.rs", 3, "k")
    assert convert.fix_ref(action.data) == convert.FixRef("file:///a.rs", 3, "k")
    assert convert.fix_ref({"uri": 1, "key": "k"}) is None
    assert convert.fix_ref([1, 2]) is None


def test_command_needs_exactly_one_offer_id() -> None:
    assert convert.offer_id_argument(["abc"]) == "abc"
    for bad in ([], [1], ["a", "b"], [""]):
        with pytest.raises(ValueError, match="offer id"):
            convert.offer_id_argument(bad)


def test_diagnostic_message_carries_the_label_and_notes_as_rust_analyzer_shows_them() -> None:
    span = Span("src/main.rs", 0, 1, 1, 1, 1, 2, is_primary=True, label="expected `u32`, found `usize`")
    note = RustDiagnostic(level="note", message="expected due to this")
    located = RustDiagnostic(
        level="help",
        message="you can convert",
        spans=(Span("src/main.rs", 0, 1, 1, 1, 1, 2, label="here", suggested_replacement=None),),
    )
    diag = RustDiagnostic("error", "mismatched types", "E0308", spans=(span,), children=(note, located))
    assert convert.full_message(diag) == "mismatched types\nexpected `u32`, found `usize`\nnote: expected due to this"


def test_versioned_edits_name_the_document_version_they_were_computed_for() -> None:
    edit = Edit("src/main.rs", 0, 1, "y")
    uri_of = lambda p: p.as_uri()  # noqa: E731
    plain = convert.workspace_edit([edit], Path("/c"), {"src/main.rs": b"x\n"}, uri_of, "utf-16")
    assert plain.changes is not None and plain.document_changes is None
    versioned = convert.workspace_edit(
        [edit], Path("/c"), {"src/main.rs": b"x\n"}, uri_of, "utf-16", {"file:///c/src/main.rs": 4}
    )
    [change] = versioned.document_changes or []
    assert isinstance(change, types.TextDocumentEdit) and change.text_document.version == 4


def test_only_filter_admits_quickfixes() -> None:
    assert convert.wants_quickfix(None)
    assert convert.wants_quickfix(["quickfix"])
    assert not convert.wants_quickfix(["refactor"])


def test_insertion_at_region_start_belongs_to_the_region() -> None:
    edits = [Edit("f.rs", 10, 10, "#[derive(Debug)]\n")]
    assert shifted(10, edits, is_end=False) == 10
    assert shifted(20, edits, is_end=True) == 20 + len("#[derive(Debug)]\n")


def test_region_texts_before_and_after_a_fix() -> None:
    before = b"struct P;\n\nfn main() {\n    let t = s;\n}\n"
    edit = Edit("m.rs", before.index(b"s;"), before.index(b"s;") + 1, "s.clone()")
    after = before.replace(b"= s;", b"= s.clone();")
    diag = RustDiagnostic(
        level="error",
        message="moved",
        code="E0382",
        spans=(Span("m.rs", edit.byte_start, edit.byte_end, 4, 4, 13, 14, is_primary=True),),
    )
    [region] = regions_changed(diag, (edit,), {"m.rs": before}, {"m.rs": after})
    assert region.before.startswith("fn main()") and "let t = s;" in region.before
    assert region.after == region.before.replace("= s;", "= s.clone();")


def test_adapter_changes_name_routes_and_newest_version() -> None:
    change = change_between({"borrow": "b1"}, {"borrow": "b2", "types": "t1"})
    assert change is not None and change.routes == ["borrow", "types"] and change.version == "t1"
    assert change_between({"a": "1"}, {"a": "1"}) is None
    rollback = change_between({"a": "1"}, {})
    assert rollback is not None and "rolled back" in rollback.message


def test_settings_come_from_the_section_or_the_object() -> None:
    assert settings_section({"sleepyCoder": {"attempts": 2}}) == {"attempts": 2}
    assert settings_section({"attempts": 2}) == {"attempts": 2}
    assert settings_section(None) == {} and settings_section(7) == {}


def test_crate_guess_is_the_nearest_manifest(tmp_path: Path) -> None:
    (tmp_path / "c" / "src").mkdir(parents=True)
    (tmp_path / "c" / "Cargo.toml").write_text("[package]\n")
    assert crate_guess(tmp_path / "c" / "src" / "main.rs") == str(tmp_path / "c")
    assert crate_guess(tmp_path / "lone.rs") == str(tmp_path / "lone.rs")


def test_a_new_cache_folder_gives_the_model_a_new_handle(tmp_path: Path) -> None:
    from learner.config import Settings
    from lsp_server.server import SleepyServer

    server = SleepyServer(Settings(model_enabled=False, cache_dir=tmp_path / "a"))
    first = server.runtime
    server.configure({"cacheDir": str(tmp_path / "b")})  # where the model's prepared copy lives
    assert server.runtime is not first and server.runtime.settings.cache_dir == tmp_path / "b"
    server.configure({"ignoreTimeoutS": 30})
    assert server.runtime.settings.cache_dir == tmp_path / "b"
