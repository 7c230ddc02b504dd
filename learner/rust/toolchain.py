"""Finding the Rust toolchain: the ``cargo`` and ``rustc`` binaries and rustc's version.

A missing tool is :class:`~learner.errors.ToolchainMissing` with what to install; running
them on a crate is :mod:`learner.rust.check`.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from learner.errors import ToolchainMissing


def _find(tool: str) -> Path:
    found = shutil.which(tool)
    if found:
        return Path(found)
    fallback = Path.home() / ".cargo" / "bin" / tool
    if fallback.is_file():
        return fallback
    raise ToolchainMissing(
        f"`{tool}` was not found on PATH; install Rust (https://rustup.rs) and make sure `{tool}` runs"
    )


def cargo_path() -> Path:
    return _find("cargo")


def rustc_path() -> Path:
    return _find("rustc")


@functools.lru_cache(maxsize=1)
def rustc_version() -> str:
    """``rustc 1.95.0 (59807616e 2026-04-14)``; recorded with every diagnostic."""
    out = subprocess.run([str(rustc_path()), "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()
