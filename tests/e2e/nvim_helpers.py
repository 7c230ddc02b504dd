"""Running a Lua script in a real headless Neovim with the repository's plugin, for the e2e tests
and benchmarks: one environment (isolated XDG folders, this repository on PYTHONPATH so the server
starts from it) and one way to read back the JSON result a script writes to ``$SC_OUT``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NVIM = shutil.which("nvim")
#: Shared Lua helpers the scripts load with ``dofile(vim.env.SC_DRIVER)``.
DRIVER = Path(__file__).with_name("nvim_driver.lua")


def run_lua(
    script: Path, work: Path, cwd: Path, extra_env: dict[str, str], *, init: str = "NONE", timeout: float = 140
) -> dict[str, Any]:
    """Run ``script`` after ``-u init`` (NONE: only the plugin on the runtimepath); return its result.

    Fails with Neovim's output when the script wrote no result or reported an ``error``."""
    assert NVIM is not None, "nvim is not on PATH"
    out = work / f"{script.stem}.json"
    env = {
        **os.environ,
        "SC_OUT": str(out),
        "SC_DRIVER": str(DRIVER),
        "SC_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "XDG_STATE_HOME": str(work / "state"),
        "XDG_DATA_HOME": str(work / "data"),
        "XDG_CONFIG_HOME": str(work / "config"),
        **extra_env,
    }
    command = [NVIM, "--headless", "-i", "NONE", "-u", init]
    if init == "NONE":
        command += ["--cmd", f"set rtp+={REPO / 'neovim'}"]
    command += ["-c", f"luafile {script}"]
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.is_file(), f"nvim wrote no result (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(out.read_text())
    assert "error" not in result and "failed" not in result, (result, proc.stderr[-2000:])
    return result
