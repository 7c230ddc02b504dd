"""Compiler text reaches the terminal as text: no rich markup eaten, no escape sequences let through."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from learner.cli import app
from tests.rust_fixtures import MISSING_DERIVE_LIB, make_crate

runner = CliRunner()


def test_fix_titles_keep_their_brackets(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/lib.rs": MISSING_DERIVE_LIB})
    result = runner.invoke(app, ["fix", str(root), "--no-model"])
    assert result.exit_code == 0, result.output
    assert "#[derive(Debug)]" in result.output


def test_escape_sequences_from_compile_error_never_reach_the_terminal(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": 'compile_error!("\\x1b[2J\\x1b[31mgotcha");\nfn main() {}\n'})
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--verbose"])
    assert result.exit_code == 0, result.output
    assert "gotcha" in result.output
    assert "\x1b" not in result.output


def test_routes_print_hints_with_their_brackets() -> None:
    result = runner.invoke(app, ["routes"])
    assert result.exit_code == 0
    assert "#[derive" in result.output
