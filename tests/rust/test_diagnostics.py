"""rustc JSON parsing, crate location and checking, on real compiler output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from learner.errors import NotACrate
from learner.fix.router import route_for_code
from learner.records import Applicability
from learner.rust.check import check
from learner.rust.crate import locate_crate
from learner.rust.diagnostics import parse_messages
from tests.rust_fixtures import MISSING_DERIVE_LIB, MOVED_VALUE_BIN, TWO_TYPE_ERRORS, make_crate


def test_non_diagnostic_lines_are_skipped() -> None:
    lines = [
        "not json at all",
        json.dumps({"reason": "compiler-artifact", "target": {}}),
        json.dumps({"reason": "build-finished", "success": False}),
        "[1, 2]",
        "{broken json",
    ]
    assert parse_messages(lines) == []


def test_cargo_json_parses_code_spans_and_suggestions(tmp_path: Path) -> None:
    crate = locate_crate(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}))
    result = check(crate, tmp_path / "target")
    [error] = result.errors
    assert error.code == "E0382"
    span = error.primary_span
    assert span is not None and span.file == "src/main.rs" and span.line_start == 4
    assert MOVED_VALUE_BIN.encode()[span.byte_start : span.byte_end] == b"s"
    assert error.secondary_spans, "the move site is a secondary span"
    kinds = {s.applicability for s in error.suggestions}
    assert Applicability.MACHINE_APPLICABLE in kinds
    assert "E0382" in error.rendered


def test_lib_crate_and_several_errors_in_one_file(tmp_path: Path) -> None:
    lib = locate_crate(make_crate(tmp_path / "lib", {"src/lib.rs": MISSING_DERIVE_LIB}))
    assert [d.code for d in check(lib, tmp_path / "t1").errors] == ["E0277"]
    bin_crate = locate_crate(make_crate(tmp_path / "bin", {"src/main.rs": TWO_TYPE_ERRORS}))
    codes = sorted(d.code or "" for d in check(bin_crate, tmp_path / "t2").errors)
    assert codes == ["E0308", "E0308"]


def test_workspace_member_paths_are_relative_to_the_workspace_root(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["app"]\nresolver = "2"\n')
    make_crate(ws / "app", {"src/main.rs": MOVED_VALUE_BIN}, name="app")
    crate = locate_crate(ws / "app" / "src" / "main.rs")
    assert crate.root == ws.resolve()
    [error] = check(crate, tmp_path / "target").errors
    assert error.primary_span is not None and error.primary_span.file == "app/src/main.rs"


def test_lone_rs_file_is_checked_with_rustc(tmp_path: Path) -> None:
    path = tmp_path / "lone.rs"
    path.write_text(MOVED_VALUE_BIN)
    crate = locate_crate(path)
    assert crate.is_single_file and crate.crate_type == "bin"
    [error] = check(crate, tmp_path / "target").errors
    assert error.code == "E0382" and error.primary_span is not None
    assert error.primary_span.file == "lone.rs"


def test_syntax_error_without_code_is_reported(tmp_path: Path) -> None:
    crate = locate_crate(make_crate(tmp_path / "c", {"src/main.rs": "fn main() { let x = ; }\n"}))
    errors = check(crate, tmp_path / "target").errors
    assert errors and errors[0].code is None
    assert route_for_code(errors[0].code).is_fallback


def test_a_folder_without_a_crate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotACrate, match="not inside a cargo crate"):
        locate_crate(tmp_path)
