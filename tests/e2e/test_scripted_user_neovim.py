"""A scripted user in a real headless Neovim performs every kind of feedback event on fixture
crates; the store (read with ``sleepy-coder data export``) must hold exactly those events."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.scripted_user import EVENTS, check_export, export_rows, make_crates

REPO = Path(__file__).resolve().parents[2]
NVIM = shutil.which("nvim")

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(NVIM is None, reason="nvim is not on PATH (CI installs Debian's neovim)"),
]


def test_scripted_user_in_neovim_leaves_exactly_its_events_in_the_store(tmp_path: Path) -> None:
    crate_a, crate_b = make_crates(tmp_path)
    out = tmp_path / "result.json"
    env = {
        **os.environ,
        "SC_OUT": str(out),
        "SC_CRATE_A": str(crate_a),
        "SC_CRATE_B": str(crate_b),
        "SC_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    command = [
        str(NVIM),
        "--headless",
        "-u",
        "NONE",
        "-i",
        "NONE",
        "--cmd",
        f"set rtp+={REPO / 'neovim'}",
        "-c",
        f"luafile {Path(__file__).with_name('nvim_scripted_user.lua')}",
    ]
    proc = subprocess.run(command, cwd=crate_a, env=env, capture_output=True, text=True, timeout=280)
    assert out.is_file(), f"nvim wrote no result (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    result = json.loads(out.read_text())
    assert "error" not in result and "failed" not in result, result

    events = result["events"]
    offer_ids = {name: events[name]["offerId"] for name, _ in EVENTS if name != "rejected"}
    assert result["rejected_title"].startswith("Reject this fix (sleepy-coder): rustc:")
    tables = export_rows()
    rejected = [r for r in tables["outcomes"] if r["kind"] == "rejected"]
    assert len(rejected) == 1
    offer_ids["rejected"] = rejected[0]["offer_id"]
    check_export(tables, offer_ids)
    assert events["derive"]["title"] == "rustc: consider annotating `Item` with `#[derive(Debug)]`"
