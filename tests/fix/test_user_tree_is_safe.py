"""Nothing outside the scratch copy is written while verifying, and applying writes only what the user picked.

Real cargo, real files: a module pulled in with ``#[path]`` from outside the crate (by absolute
path or by climbing out with ``..``) is compiled but never opened for writing; ``--apply`` counts
from 1, refuses numbers it has no fix for, and writes through a symlinked source file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from learner.cli import app
from tests.rust_fixtures import make_crate

runner = CliRunner()

#: An E0308 whose MachineApplicable suggestion (``&s``) edits this file.
OUTSIDE_MODULE = 'pub fn g() {\n    let s = String::from("x");\n    takes(s);\n}\n\nfn takes(_s: &String) {}\n'
MAIN_WITH_ERROR = 'fn main() {\n    let s = String::from("x");\n    takes(s);\n}\n\nfn takes(_s: &String) {}\n'


def _fingerprint(path: Path) -> tuple[bytes, int, int]:
    stat = path.stat()
    return path.read_bytes(), stat.st_mtime_ns, stat.st_ino


def _fix_json(root: Path, *extra: str) -> dict[str, object]:
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--json", "--verbose", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("how", ["absolute", "climbing"])
def test_a_module_outside_the_crate_is_never_written_while_verifying(tmp_path: Path, how: str) -> None:
    outside = tmp_path / "elsewhere" / "o.rs"
    outside.parent.mkdir()
    outside.write_text(OUTSIDE_MODULE)
    target = str(outside) if how == "absolute" else "../../elsewhere/o.rs"
    main = f'#[path = "{target}"]\nmod o;\n\nfn main() {{\n    o::g();\n}}\n'
    root = make_crate(tmp_path / "user", {"src/main.rs": main})
    before = _fingerprint(outside)
    report = _fix_json(root)
    assert _fingerprint(outside) == before  # not rewritten and restored: never opened for writing
    errors = report["errors"]
    assert isinstance(errors, list) and errors, report
    assert all(not e["fixes"] for e in errors), "a fix that edits a file outside the crate was offered"
    reasons = [r["reason"] for e in errors for r in e["rejected"]]
    assert any("outside the crate" in r for r in reasons), reasons
    assert not (tmp_path / "user" / "elsewhere").exists()


def test_apply_counts_from_one_and_refuses_a_fix_it_does_not_have(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "user", {"src/main.rs": MAIN_WITH_ERROR})
    zero = runner.invoke(app, ["fix", str(root), "--no-model", "--apply", "0"])
    assert zero.exit_code == 2 and "counts from 1" in zero.output
    many = runner.invoke(app, ["fix", str(root), "--no-model", "--apply", "99"])
    assert many.exit_code == 2 and "no fix 99" in many.output, many.output
    assert (root / "src" / "main.rs").read_text() == MAIN_WITH_ERROR
    best = runner.invoke(app, ["fix", str(root), "--no-model", "--apply", "1"])
    assert best.exit_code == 0, best.output
    assert "takes(&s)" in (root / "src" / "main.rs").read_text()


def test_apply_writes_through_a_symlinked_source_file(tmp_path: Path) -> None:
    real = tmp_path / "shared" / "main.rs"
    real.parent.mkdir()
    real.write_text(MAIN_WITH_ERROR)
    root = make_crate(tmp_path / "user", {})
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "main.rs").symlink_to(real)
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--apply", "1"])
    assert result.exit_code == 0, result.output
    assert (root / "src" / "main.rs").is_symlink()
    assert "takes(&s)" in real.read_text()
