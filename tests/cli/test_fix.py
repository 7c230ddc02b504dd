"""`sleepy-coder fix` end to end on real crates, in-process with typer's CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from learner.cli.app import app
from learner.config import Settings
from tests.rust_fixtures import MISSING_DERIVE_LIB, MOVED_VALUE_BIN, TYPE_THEN_BORROW_ERRORS, make_crate

runner = CliRunner()


def test_fix_prints_error_route_and_verified_diff(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    result = runner.invoke(app, ["fix", str(root), "--no-model"])
    assert result.exit_code == 0, result.output
    assert "E0382" in result.output and "moved-value" in result.output
    assert "+++ b/src/main.rs" in result.output and ".clone()" in result.output


def test_json_output_lists_fixes_with_ids_and_diffs(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/lib.rs": MISSING_DERIVE_LIB})
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--json"])
    assert result.exit_code == 0, result.output
    [error] = json.loads(result.output)["errors"]
    assert error["code"] == "E0277" and error["route"] == "trait-bound"
    assert error["fixes"] and "#[derive(Debug)]" in error["fixes"][0]["diff"]


def test_apply_writes_the_fix_and_the_crate_then_compiles(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--apply", "1"])
    assert result.exit_code == 0, result.output
    assert ".clone()" in (root / "src/main.rs").read_text()
    again = runner.invoke(app, ["fix", str(root), "--no-model"])
    assert "no errors" in again.output


def test_fix_all_prints_the_sequence_and_leaves_a_building_crate(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": TYPE_THEN_BORROW_ERRORS})
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--all"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("1. rustc: you can convert") and "E0308" in lines[0]
    assert lines[1].startswith("2. rustc: apply the machine-applicable suggestions of 2 errors together")
    assert "the crate builds after 2 fix(es)" in result.output
    assert "no errors" in runner.invoke(app, ["fix", str(root), "--no-model"]).output


def test_fix_all_that_cannot_finish_says_why_as_json_and_exits_1(tmp_path: Path) -> None:
    program = 'fn main() {\n    let a: i32 = "one";\n    println!("{a}");\n}\n'
    root = make_crate(tmp_path / "c", {"src/main.rs": program})
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--all", "--json"])
    assert result.exit_code == 1
    answer = json.loads(result.output)
    assert answer["fixed"] is False and answer["reason"] == "no error has a verified fix"
    assert [e["code"] for e in answer["remaining"]] == ["E0308"] and answer["steps"] == []
    refused = runner.invoke(app, ["fix", str(root), "--no-model", "--all", "--apply", "1"])
    assert refused.exit_code != 0 and "leave out --apply" in refused.output


def test_apply_keeps_crlf_line_endings(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {})
    (root / "src").mkdir()
    (root / "src/main.rs").write_bytes(MOVED_VALUE_BIN.replace("\n", "\r\n").encode())
    result = runner.invoke(app, ["fix", str(root), "--no-model", "--apply", "1"])
    assert result.exit_code == 0, result.output
    data = (root / "src/main.rs").read_bytes()
    assert b".clone()" in data and data.count(b"\r\n") == MOVED_VALUE_BIN.count("\n")


def test_not_a_crate_gives_a_clear_error_without_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fix", str(tmp_path), "--no-model"])
    assert result.exit_code == 2
    assert "not inside a cargo crate" in result.output
    assert "Traceback" not in result.output


def test_missing_cargo_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path))
    result = runner.invoke(app, ["fix", str(root), "--no-model"])
    assert result.exit_code == 2
    assert "`cargo` was not found" in result.output


def test_unfetchable_dependency_gives_cargos_reason(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": "fn main() {}\n"}, deps='gone = { path = "../gone" }')
    result = runner.invoke(app, ["fix", str(root), "--no-model"])
    assert result.exit_code == 2
    assert "cargo could not check" in result.output and "gone" in result.output


def test_non_utf8_source_is_reported_not_crashed_on(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": "mod bad;\nfn main() {}\n"})
    (root / "src/bad.rs").write_bytes(b"// \xff\xfe not utf-8\nfn f() {}\n")
    result = runner.invoke(app, ["fix", str(root), "--no-model"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "UTF-8" in result.output


def test_wrong_model_path_still_serves_rustc_suggestions(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    missing = tmp_path / "no-such-model"
    result = runner.invoke(app, ["fix", str(root), "--model", str(missing), "--all-sources"])
    assert result.exit_code == 0, result.output
    assert ".clone()" in result.output
    assert "model fixes unavailable" in result.output
    assert os.environ.get("SLEEPY_CODER_HOME")


def test_model_source_runs_attempts_with_feedback_on_a_tiny_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The model path end to end: load, prompt, generate, parse, verify, retry; refusals say why."""
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    args = ["fix", str(root), "--model", str(tiny_model_dir), "--all-sources", "--attempts", "2", "--json", "-v"]
    result = runner.invoke(app, args, env={"SLEEPY_CODER_SETTINGS": json.dumps({"candidates": 1})})
    assert result.exit_code == 0, result.output
    [error] = json.loads(result.stdout)["errors"]
    assert error["fixes"][0]["source"] == "rustc"
    model_tries = [r for r in error["rejected"] if r["source"] == "model"]
    # A random tiny model cannot fix anything; both attempts must be made and refused with a reason.
    assert [r["attempt"] for r in model_tries] == [1, 2]
    assert all(r["reason"] for r in model_tries)
    assert (root / "src/main.rs").read_text() == MOVED_VALUE_BIN


def test_several_candidates_per_attempt_are_each_verified_once(tmp_path: Path, tiny_model_dir: Path) -> None:
    """candidates = 4: one batched generation per attempt; each distinct answer verified or refused."""
    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    settings = json.dumps({"candidates": 4, "maxNewTokens": 24})
    args = ["fix", str(root), "--model", str(tiny_model_dir), "--all-sources", "--attempts", "1", "--json", "-v"]
    result = runner.invoke(app, args, env={"SLEEPY_CODER_SETTINGS": settings})
    assert result.exit_code == 0, result.output
    [error] = json.loads(result.stdout)["errors"]
    model_tries = [r for r in error["rejected"] if r["source"] == "model"]
    assert len(model_tries) == 4 and all(r["attempt"] == 1 and r["reason"] for r in model_tries)


@pytest.mark.embedded_model
# A hang guard, not a target: the 1.5B converts (1-2 min), then answers 3 errors x 4 candidates.
@pytest.mark.timeout(1800)
def test_embedded_model_proposes_verified_or_explained_fixes_for_the_example_crate(
    tmp_path: Path, embedded_model_dir: Path
) -> None:
    """The README's main job on the real model: every model attempt ends verified or refused with a reason."""
    import shutil

    root = tmp_path / "typical-errors"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "typical-errors", root)
    args = ["fix", str(root), "--model", str(embedded_model_dir), "--all-sources", "--attempts", "1", "--json", "-v"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    errors = json.loads(result.stdout)["errors"]
    assert {e["code"] for e in errors} >= {"E0308", "E0277"}
    candidates = Settings().candidates
    for error in errors:
        made = [f for f in error["fixes"] if f["source"] == "model"] + [
            r for r in error["rejected"] if r["source"] == "model"
        ]
        # One attempt: the greedy answer, and the other candidates only when it was refused.
        assert 1 <= len(made) <= candidates and all(m["attempt"] == 1 for m in made), made
        assert all(m.get("verdict") or m.get("reason") for m in made)


def test_apply_refuses_a_fix_when_the_file_changed_after_the_check(tmp_path: Path, settings: Settings) -> None:
    from learner.fix.pipeline import StaleFix, apply_fix, build_sources, fix_path

    root = make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN})
    session, results = fix_path(root, settings, build_sources(settings))
    candidate = results[0].fixes[0].candidate
    (root / "src/main.rs").write_text(MOVED_VALUE_BIN.replace("hello", "hello, world"))
    with pytest.raises(StaleFix):
        apply_fix(session, candidate)
    assert "hello, world" in (root / "src/main.rs").read_text()
