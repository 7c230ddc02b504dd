"""A real headless Neovim with the repo's plugin (neovim/) applies a rustc fix through sleepy-coder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.lsp_helpers import open_store
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate

REPO = Path(__file__).resolve().parents[2]
NVIM = shutil.which("nvim")

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(NVIM is None, reason="nvim is not on PATH (CI installs Debian's neovim)"),
]


def test_neovim_applies_rustc_fix_and_acceptance_is_recorded(tmp_path: Path) -> None:
    crate = make_crate(tmp_path / "nvim-crate", {"src/main.rs": MOVED_VALUE_BIN})
    main = crate / "src" / "main.rs"
    out = tmp_path / "result.json"
    env = {
        **os.environ,
        "SC_OUT": str(out),
        "SC_FILE": str(main),
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
        f"luafile {Path(__file__).with_name('nvim_flow.lua')}",
    ]
    proc = subprocess.run(command, cwd=crate, env=env, capture_output=True, text=True, timeout=140)
    assert out.is_file(), f"nvim wrote no result (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    result = json.loads(out.read_text())
    assert "error" not in result and "failed" not in result, result

    assert result["diagnostic"]["code"] == "E0382" and result["diagnostic"]["source"] == "sleepy-coder"
    assert result["picked"].startswith("rustc:")
    assert "let t = s.clone();" in main.read_text(), "the fix was applied and saved"
    assert result["status"]["store"]["accepted"] == 1
    with open_store() as store:
        [outcome] = store.outcomes(result["fix_id"])
        assert outcome.kind == "accepted" and outcome.offer_id == result["offer_id"]
