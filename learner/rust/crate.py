"""Where a path's crate is: the workspace root that cargo reports paths against, or a lone file.

Diagnostics, edits and scratch copies all use paths relative to :attr:`CrateRef.root`, so
this module decides that root once.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from learner.errors import NotACrate, ToolchainMissing
from learner.rust.toolchain import cargo_path

_MAIN_FN = re.compile(r"(?m)^\s*(pub\s+)?(async\s+)?fn\s+main\s*\(")


def has_main_fn(code: str) -> bool:
    """Does this Rust source define ``fn main`` (so it builds as a binary)? A line-start match, not a parse."""
    return bool(_MAIN_FN.search(code))


@dataclass(frozen=True)
class CrateRef:
    """A cargo workspace (``manifest`` set) or a single ``.rs`` file compiled with rustc."""

    root: Path
    manifest: Path | None = None
    #: For a lone file: its name relative to ``root``.
    single_file: str | None = None
    edition: str = "2021"
    #: For a lone file: ``bin`` or ``lib``.
    crate_type: str = "bin"
    #: Check tests, benches and examples too (``--all-targets``). Off only where the manifest says
    #: ``[package.metadata.sleepy-coder] check-tests = false``: a crate copied from a registry
    #: whose tests need dev-dependencies that are not installed.
    check_tests: bool = True

    @property
    def is_single_file(self) -> bool:
        return self.single_file is not None

    @property
    def key(self) -> str:
        """Stable short id of this crate, for its persistent target and scratch dirs."""
        ident = f"{self.root}|{self.single_file or ''}"
        name = (self.single_file or self.root.name).replace("/", "_").replace(".", "_")
        return f"{name}-{hashlib.sha1(ident.encode()).hexdigest()[:10]}"


def locate_crate(path: Path, edition: str = "2021") -> CrateRef:
    """The crate containing ``path`` (a crate dir, a workspace member, a file in one, or a lone .rs)."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise NotACrate(f"{path} does not exist")
    manifest = _nearest_manifest(path)
    if manifest is not None:
        workspace = _workspace_manifest(manifest)
        return CrateRef(root=workspace.parent, manifest=workspace, check_tests=_checks_tests(workspace))
    if path.is_file() and path.suffix == ".rs":
        crate_type = "bin" if has_main_fn(path.read_bytes().decode("utf-8", "replace")) else "lib"
        return CrateRef(root=path.parent, single_file=path.name, edition=edition, crate_type=crate_type)
    raise NotACrate(
        f"{path} is not inside a cargo crate (no Cargo.toml above it) and is not a .rs file; "
        "point sleepy-coder at a crate directory, a file inside one, or a single .rs file"
    )


def member_dir(crate: CrateRef, path: Path) -> Path | None:
    """The workspace member folder ``path`` lies in, relative to the workspace root; None at the root.

    ``fix member/`` checks the whole workspace once (members depend on each other) but reports
    only that member's errors.
    """
    if crate.manifest is None:
        return None
    manifest = _nearest_manifest(path.expanduser().resolve())
    if manifest is None or manifest.parent == crate.root or not manifest.parent.is_relative_to(crate.root):
        return None
    return manifest.parent.relative_to(crate.root)


def _nearest_manifest(path: Path) -> Path | None:
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        candidate = folder / "Cargo.toml"
        if candidate.is_file():
            return candidate
    return None


def _locate_project(manifest: Path) -> Path | None:
    try:
        out = subprocess.run(
            [str(cargo_path()), "locate-project", "--workspace", "--message-format", "json"],
            cwd=manifest.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except ToolchainMissing:
        raise
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        return Path(json.loads(out.stdout)["root"])
    except (ValueError, KeyError):
        return None


def _workspace_manifest(manifest: Path) -> Path:
    return _locate_project(manifest) or manifest


def _checks_tests(manifest: Path) -> bool:
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True  # cargo itself reports a broken manifest
    ours = ((data.get("package") or {}).get("metadata") or {}).get("sleepy-coder") or {}
    return ours.get("check-tests", True) is not False
