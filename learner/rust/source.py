"""Source files as rustc sees them, edits applied to them, and diffs of the result.

rustc normalises CRLF internally but maps its JSON byte offsets back to the file as it is
on disk, so everything here works on the raw bytes. Replacement text (from rustc or the
model) uses ``\n``; in a CRLF file it is written with ``\r\n`` so line endings stay uniform.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from learner.errors import SleepyCoderError, SourceUnreadable
from learner.records import Edit


@dataclass(frozen=True)
class SourceText:
    """A file's bytes (checked to be UTF-8) and its line-ending convention."""

    data: bytes
    crlf: bool = False

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


def normalise(raw: bytes, name: str = "<source>") -> SourceText:
    """Check ``raw`` is UTF-8 (as rustc requires) and note whether it uses CRLF line endings."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceUnreadable(f"{name} is not valid UTF-8 (byte {exc.start}); rustc cannot read it either") from exc
    return SourceText(raw, b"\r\n" in raw)


def read_source(path: Path) -> SourceText:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc
    return normalise(raw, str(path))


class OverlappingEdits(SleepyCoderError):
    """Two edits of one candidate touch the same bytes: the candidate is malformed."""


def apply_edits(data: bytes, edits: Iterable[Edit], crlf: bool = False) -> bytes:
    """Apply edits of one file (offsets into the original ``data``) all at once."""
    ordered = sorted(edits, key=lambda e: (e.byte_start, e.byte_end))
    for first, second in itertools.pairwise(ordered):
        if second.byte_start < first.byte_end:
            raise OverlappingEdits(f"edits overlap at bytes {second.byte_start}-{first.byte_end}")
    out = bytearray(data)
    for edit in reversed(ordered):
        if not 0 <= edit.byte_start <= edit.byte_end <= len(data):
            raise OverlappingEdits(f"edit {edit.byte_start}-{edit.byte_end} is outside the file")
        text = edit.new_text.replace("\r\n", "\n")
        out[edit.byte_start : edit.byte_end] = (text.replace("\n", "\r\n") if crlf else text).encode("utf-8")
    return bytes(out)


def edits_by_file(edits: Iterable[Edit]) -> dict[str, list[Edit]]:
    grouped: dict[str, list[Edit]] = {}
    for edit in edits:
        grouped.setdefault(edit.file, []).append(edit)
    return grouped


def unified_diff(file: str, before: bytes, after: bytes) -> str:
    lines = difflib.unified_diff(
        before.decode("utf-8").splitlines(keepends=True),
        after.decode("utf-8").splitlines(keepends=True),
        fromfile=f"a/{file}",
        tofile=f"b/{file}",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def line_col_to_offset(data: bytes, line: int, column: int) -> int:
    """Byte offset of 1-based ``line`` and 1-based character ``column`` (rustc's convention)."""
    start = 0
    for _ in range(line - 1):
        nl = data.find(b"\n", start)
        if nl < 0:
            return len(data)
        start = nl + 1
    end = data.find(b"\n", start)
    line_text = data[start : end if end >= 0 else len(data)].decode("utf-8")
    return start + len(line_text[: max(column - 1, 0)].encode("utf-8"))
