"""``kind: crate`` cases: one file of a real crate replaced, graded in the crate, run from a registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from learner.config import Settings
from learner.eval.cases import CaseFormatError, load_cases
from learner.eval.runner import run_eval
from learner.store import Store
from tests.rust_fixtures import TINYLIB_COUNT, make_registry


def crate_case(**changes: Any) -> dict[str, Any]:
    row = {
        "id": "dev/tinylib-count-drop-mut",
        "kind": "crate",
        "crate": "tinylib-0.2.0",
        "file": "src/count.rs",
        "broken": TINYLIB_COUNT.replace("let mut sum", "let sum"),
        "fixed": TINYLIB_COUNT,
        "error_codes": ["E0596"],
    }
    row.update(changes)
    return row


def write_cases(path: Path, *rows: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_crate_cases_load_and_a_missing_crate_is_skipped_with_how_to_install_it(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry")
    path = write_cases(
        tmp_path / "cases.jsonl", crate_case(), crate_case(id="dev/other", crate="version-compare-0.1.1")
    )
    case_set = load_cases([path], crate_root=root)
    [case] = case_set.cases
    assert case.kind == "crate" and case.program_file == "src/count.rs" and case.crate is not None
    assert case.crate.path == root / "tinylib-0.2.0"
    [skipped] = case_set.skipped
    assert skipped.id == "dev/other" and "apt-get install librust-version-compare-dev" in skipped.reason


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"file": "../tinydep-0.1.0/src/lib.rs"}, "inside the crate"),
        ({"file": "/etc/passwd.rs"}, "inside the crate"),
        ({"file": "Cargo.toml"}, ".rs file"),
        ({"crate": "tinylib"}, "crate folder"),
        ({"kind": "workspace"}, "neither 'program' nor 'crate'"),
    ],
)
def test_a_crate_case_with_a_bad_field_is_refused_naming_it(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = write_cases(tmp_path / "cases.jsonl", crate_case(**changes))
    with pytest.raises(CaseFormatError, match=message):
        load_cases([path], crate_root=make_registry(tmp_path / "registry"))


def test_a_crate_case_is_fixed_and_graded_inside_its_real_crate(tmp_path: Path, settings: Settings) -> None:
    root = make_registry(tmp_path / "registry")
    path = write_cases(tmp_path / "cases.jsonl", crate_case())
    with Store.open(settings) as store:
        outcome = run_eval(load_cases([path], crate_root=root), "rustc", settings, store, jobs=1)
        [result] = store.eval_results(outcome.run_id)
    assert result.passed, result.reason
    assert result.exact_match is True
    assert result.candidate is not None and "src/count.rs" in result.candidate and "let mut sum" in result.candidate


def test_the_cli_takes_the_registry_with_crate_root(tmp_path: Path, settings: Settings) -> None:
    from typer.testing import CliRunner

    from learner.cli.app import app

    root = make_registry(tmp_path / "registry")
    path = write_cases(tmp_path / "cases.jsonl", crate_case())
    result = CliRunner().invoke(app, ["eval", str(path), "--strategy", "rustc", "--crate-root", str(root)])
    assert result.exit_code == 0, result.output
    assert "1/1" in result.output or "100" in result.output
    missing = CliRunner().invoke(app, ["eval", str(path), "--crate-root", str(tmp_path / "nowhere")])
    assert "not installed" in missing.output
