"""Scratch crates: the one place sleepy-coder writes Rust in order to compile it, never the user's tree.

Three users, one mechanism. The verifier mirrors the user's crate and checks each candidate
there; the curriculum mutates real crates in per-worker mirrors; the curriculum's lone doc
snippets and the evaluation's cases are programs written into a crate of their own. Every
rewrite goes through :func:`learner.files.write_with_new_mtime`, so cargo's fingerprints see
each change even when two land in the same clock tick, and every mirror has its own
persistent target dir, so checks stay incremental and never touch the user's build.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from learner.errors import SleepyCoderError
from learner.files import write_with_new_mtime
from learner.rust.check import CheckResult, check
from learner.rust.crate import CrateRef

#: Folders a mirror never copies: build output, version control, other tools' environments.
SKIP_DIRS = frozenset({"target", ".git", "node_modules", ".hg", ".svn", ".venv", "__pycache__"})
#: The one hidden folder a mirror keeps: cargo's configuration (source replacement, build flags).
KEEP_HIDDEN = frozenset({".cargo"})
#: Larger files are left out of a mirror unless cargo reads them as code or configuration: assets
#: and data sets stay in the user's tree (a crate that ``include_bytes!`` one cannot be verified).
MIRROR_MAX_BYTES = 4 * 1024 * 1024
#: What a mirror always copies, whatever its size.
CODE_SUFFIXES = (".rs", ".toml", ".lock")

#: The manifest of a crate made from one program (an evaluation case, for example).
PROGRAM_MANIFEST = """[package]
name = "{name}"
version = "0.1.0"
edition = "{edition}"
publish = false

[dependencies]
"""


class OutsideCrate(SleepyCoderError):
    """An edit names a file outside the crate (an absolute ``#[path]``, a ``..`` or a symlink that leaves it)."""


def inside(root: Path, file: str, *, follow_links: bool = True) -> bool:
    """Is ``file`` (relative to the crate ``root``) a path inside it (and, with ``follow_links``, once
    symlinks are followed)? The user's tree is judged by name only: a source file the user symlinked in
    is theirs to edit; a scratch mirror, which holds regular copies, is judged with links followed."""
    rel = Path(file)
    if rel.is_absolute() or ".." in rel.parts:
        return False
    if not follow_links:
        return True
    try:
        return (root / rel).resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def refuse_outside(root: Path, files: Iterable[str], *, follow_links: bool = True) -> None:
    """Raise :class:`OutsideCrate` for the first of ``files`` that is not :func:`inside` ``root``."""
    for file in files:
        if not inside(root, file, follow_links=follow_links):
            raise OutsideCrate(f"the fix edits {file}, which is outside the crate; sleepy-coder never writes there")


def crate_files(root: Path) -> Iterator[Path]:
    """The files a mirror of the crate at ``root`` copies: what cargo needs to check it.

    Sources, manifests, ``Cargo.lock``, cargo's configuration and small build inputs; never hidden
    files (``.env``, editor state), other lock files, or large assets (:data:`MIRROR_MAX_BYTES`).
    """
    for folder, _, files in _walk(root):
        in_cargo_dir = Path(folder).name in KEEP_HIDDEN
        for name in files:
            if name.startswith(".") and not in_cargo_dir:
                continue
            if name.endswith(".lock") and name != "Cargo.lock":
                continue
            path = Path(folder) / name
            if not name.endswith(CODE_SUFFIXES) and _size(path) > MIRROR_MAX_BYTES:
                continue
            yield path


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def rust_files(root: Path) -> Iterator[Path]:
    """The ``.rs`` files of the crate at ``root`` (the ones a mutation may change)."""
    for folder, _, files in _walk(root):
        for name in files:
            if name.endswith(".rs"):
                yield Path(folder) / name


def _walk(root: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and (d in KEEP_HIDDEN or not d.startswith("."))]
        yield folder, dirs, files


def cargo_config_files(root: Path) -> tuple[Path, ...]:
    """The ``.cargo/config.toml`` (or legacy ``config``) files cargo reads for a crate at ``root``.

    From the filesystem root down to ``root``, so that nearer files come later and take precedence
    when given as ``--config``; ``$CARGO_HOME``'s own file cargo still finds by itself. Relative
    paths inside them keep resolving against their original folders.
    """
    found = []
    for folder in (root.resolve(), *root.resolve().parents):
        for name in ("config.toml", "config"):
            candidate = folder / ".cargo" / name
            if candidate.is_file():
                found.append(candidate)
                break
    return tuple(reversed(found))


class ScratchCrate:
    """A mirror of a crate at ``path`` where changed files are written and checked.

    One change at a time per mirror: :meth:`locked` takes a thread lock within the process and
    a file lock across processes (the editor's server and a CLI run may verify the same crate).
    """

    def __init__(self, source: CrateRef, path: Path, target_dir: Path, *, offline: bool = True) -> None:
        self.source = source
        self.path = path
        self.target_dir = target_dir
        self.offline = offline
        #: The crate's own and its ancestors' cargo configuration (the mirror is out of their reach).
        self.config_files = cargo_config_files(source.root) if not source.is_single_file else ()
        manifest = path / source.manifest.relative_to(source.root) if source.manifest is not None else None
        self.crate = replace(source, root=path, manifest=manifest)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.parent / f"{self.path.name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def sync(self) -> None:
        """Make the mirror equal to the source tree (copying only what changed, removing what is gone)."""
        src_root = self.source.root
        if self.source.is_single_file:
            assert self.source.single_file is not None
            files = [src_root / self.source.single_file]
        else:
            files = list(crate_files(src_root))
        contents = {}
        for src in files:
            try:
                contents[src.relative_to(src_root)] = src.read_bytes()
            except OSError:
                continue
        mirror(self.path, contents)

    @contextlib.contextmanager
    def changed(self, files: Mapping[str, bytes]) -> Iterator[None]:
        """The mirror with ``files`` (paths relative to the crate root) replaced; put back afterwards.

        A file outside the mirror is refused (:class:`OutsideCrate`) before anything is written.
        """
        refuse_outside(self.path, files)
        originals = {f: (self.path / f).read_bytes() for f in files if (self.path / f).is_file()}
        try:
            for file, data in files.items():
                write_with_new_mtime(self.path / file, data)
            yield
        finally:
            for file in files:
                if file in originals:
                    write_with_new_mtime(self.path / file, originals[file])
                else:
                    (self.path / file).unlink(missing_ok=True)

    def check(self, timeout_s: float) -> CheckResult:
        return check(
            self.crate, self.target_dir, timeout_s=timeout_s, offline=self.offline, config_files=self.config_files
        )


def mirror(root: Path, files: Mapping[Path, bytes], *, keep: Iterable[str] = ()) -> None:
    """Make the tree at ``root`` hold exactly ``files`` (relative path -> content).

    Only files whose content differs are rewritten (:func:`write_with_new_mtime` compares contents,
    not size and mtime: a same-size edit within one second must still land), so cargo's fingerprints stay valid; every
    other file goes, whether a mirror ever wrote it or not (an old version's ``.env`` too), except
    the names in ``keep`` (a ``Cargo.lock`` cargo made there).
    """
    kept = set(keep)
    for rel, data in files.items():
        try:
            write_with_new_mtime(root / rel, data)
        except OSError:
            continue
    for folder, _, names in _walk(root):
        for name in names:
            dst = Path(folder) / name
            rel = dst.relative_to(root)
            if rel not in files and str(rel) not in kept:
                dst.unlink(missing_ok=True)


def write_program_crate(root: Path, program: str, *, package: str, edition: str, crate_type: str) -> CrateRef:
    """Write ``program`` as a cargo crate at ``root`` (``src/main.rs`` or ``src/lib.rs``), rewriting only changes."""
    write_with_new_mtime(root / "Cargo.toml", PROGRAM_MANIFEST.format(name=package, edition=edition).encode())
    write_with_new_mtime(root / program_file(crate_type), program.encode("utf-8"))
    (root / program_file("bin" if crate_type == "lib" else "lib")).unlink(missing_ok=True)
    return CrateRef(root=root, manifest=root / "Cargo.toml", edition=edition)


def program_file(crate_type: str) -> str:
    """Where a program crate keeps its source."""
    return "src/lib.rs" if crate_type == "lib" else "src/main.rs"


@contextlib.contextmanager
def lone_file(base: Path, file: str, data: bytes, *, edition: str, crate_type: str) -> Iterator[CrateRef]:
    """A fresh folder under ``base`` holding one ``.rs`` file, compiled with rustc; removed afterwards.

    Each call gets its own folder, so concurrent checks never share one.
    """
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="snippet-", dir=base))
    try:
        (folder / file).write_bytes(data)
        yield CrateRef(root=folder, single_file=file, edition=edition, crate_type=crate_type)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
