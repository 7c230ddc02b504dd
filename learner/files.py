"""Files written so that a crash leaves the old version or the new one, never half of either.

One copy of each file mechanism the layers share: atomic file and folder writes (temp sibling,
fsync, rename, fsync the folder), rewrites whose mtime is guaranteed to move (cargo decides
what to rebuild by mtime, and two writes within one clock tick would otherwise look like no
change), and the JSON Lines reader that names the file and line of a bad record.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from learner.errors import SleepyCoderError


class JsonLinesError(SleepyCoderError):
    """A JSON Lines file cannot be read, or one of its lines is not a JSON object (the message says where)."""


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, suffix: str = ".tmp") -> Iterator[IO[bytes]]:
    """A binary handle on a temp sibling of ``path``; renamed over it only if the block succeeds.

    The existing file's permission bits are kept; a new file gets the process's default mode.
    An exception inside the block removes the temp file and leaves ``path`` as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as handle:
        handle.write(data)


def write_atomic_dir(target: Path, fill: Callable[[Path], None]) -> None:
    """Build a folder with ``fill(tmp)`` in a temporary sibling, fsync its files, and rename it over ``target``.

    The previous folder is moved aside first and removed after the rename, so a crash leaves
    either it or the complete new one (plus a hidden ``.NAME.old`` or temp folder to clean up).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fill(tmp)
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700: it holds the user's code or what was learned from it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def remove_stale_temp_dirs(folder: Path, pattern: str = ".*", *, min_age_s: float = 0.0) -> list[Path]:
    """Remove hidden temporary folders (``.NAME.XXXX`` from :func:`write_atomic_dir`) a killed process left.

    Call it only where no other process can be writing into ``folder`` (the learner holds its
    lock), or with ``min_age_s`` long enough that a live writer would have finished.
    """
    removed = []
    now = time.time()
    for entry in folder.glob(pattern) if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink() and now - entry.stat().st_mtime >= min_age_s:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def write_with_new_mtime(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly that; return whether it wrote.

    After a write the mtime is later than before by at least a whole second, even when the
    clock did not move or the file's old mtime lies in the future (an earlier bump): cargo's
    fingerprints compare mtimes, and a file restored within the same tick would otherwise keep
    a stale build. Parents are created as needed.
    """
    old_ns: int | None = None
    if path.is_file():
        if path.read_bytes() == data:
            return False
        old_ns = path.stat().st_mtime_ns
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if old_ns is not None:
        advance_mtime(path, old_ns)
    return True


def advance_mtime(path: Path, old_ns: int) -> None:
    """Make ``path``'s mtime fall in a later whole second than ``old_ns`` (its mtime before a rewrite)."""
    second = 1_000_000_000
    if path.stat().st_mtime_ns // second <= old_ns // second:
        later = (old_ns // second + 1) * second
        os.utime(path, ns=(later, later))


def read_jsonl(path: Path, *, skip_invalid: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of ``path``.

    A line that is not a JSON object raises :class:`JsonLinesError` with ``path:line``, unless
    ``skip_invalid`` (for guards that scan files someone else wrote and must not stop on one
    bad line). An unreadable file always raises.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise JsonLinesError(f"cannot read {path}: {reason}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            if skip_invalid:
                continue
            raise JsonLinesError(f"{path}:{number} is not JSON ({exc})") from exc
        if not isinstance(row, dict):
            if skip_invalid:
                continue
            raise JsonLinesError(f"{path}:{number} is not a JSON object")
        yield number, row
