"""A workspace is checked once with every member's errors kept, and a member's fix reports only its own."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from learner.cli import app
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate

runner = CliRunner()
MEMBERS = 8


def _workspace(root: Path) -> Path:
    names = [f"m{i}" for i in range(MEMBERS)]
    root.mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        '[workspace]\nresolver = "2"\nmembers = [' + ", ".join(f'"{n}"' for n in names) + "]\n"
    )
    for name in names:
        make_crate(root / name, {"src/main.rs": MOVED_VALUE_BIN}, name=name)
    return root


def _errors(path: Path) -> list[dict[str, object]]:
    result = runner.invoke(app, ["fix", str(path), "--no-model", "--json", "--max-errors", "50"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["errors"])


def test_every_members_errors_are_reported_the_same_on_every_run_and_verified(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    first, second = _errors(root), _errors(root)
    files = sorted(str(e["file"]) for e in first)
    assert files == sorted(f"m{i}/src/main.rs" for i in range(MEMBERS))
    assert files == sorted(str(e["file"]) for e in second)
    assert all(e["fixes"] for e in first), "each member's error gets a verified fix"


def test_fixing_a_member_reports_only_that_members_errors(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    errors = _errors(root / "m3")
    assert [e["file"] for e in errors] == ["m3/src/main.rs"]
