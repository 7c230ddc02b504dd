"""What the user did with a fix after it was shown: accepted, edited, reverted, rejected, ignored.

The watcher follows the code region an accepted fix produced through later edits of the
buffer. Each change is located by diffing the buffer against its previous text (common prefix
and suffix), which needs no knowledge of how the editor sends changes. The region's fate is
decided when the crate compiles again without errors inside it: ``edited`` with the code the
user ended up with, or ``reverted`` when it is back to what it was before the fix (an undo is
reported as soon as it happens). Pure bookkeeping: no LSP, no store, no timers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    fix_id: str
    kind: str
    final_code: str | None = None


@dataclass
class Watch:
    """An accepted fix's region ``[start, end)`` (character offsets) in a buffer."""

    fix_id: str
    uri: str
    start: int
    end: int
    #: The region's text before the fix was applied, and right after.
    original: str
    applied: str
    #: The whole buffer as last seen, to locate the next change.
    text: str
    touched: bool = False

    def region(self) -> str:
        return self.text[self.start : self.end]


def changed_span(old: str, new: str) -> tuple[int, int, int]:
    """``(start, old_end, new_end)``: ``old[start:old_end]`` became ``new[start:new_end]``."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    tail = 0
    while tail < limit - start and old[len(old) - 1 - tail] == new[len(new) - 1 - tail]:
        tail += 1
    return start, len(old) - tail, len(new) - tail


def char_offset(text: str, line1: int, column1: int) -> int:
    """Character offset of rustc's 1-based (line, column) in ``text``."""
    offset = 0
    for _ in range(max(line1 - 1, 0)):
        nl = text.find("\n", offset)
        if nl < 0:
            return len(text)
        offset = nl + 1
    return min(offset + max(column1 - 1, 0), len(text))


class FeedbackTracker:
    """Shown fixes, decided fixes, and the regions of accepted fixes being watched."""

    def __init__(self) -> None:
        self._shown: set[str] = set()
        self._decided: set[str] = set()
        self._watches: dict[str, Watch] = {}

    def shown(self, fix_id: str) -> bool:
        """Note that ``fix_id`` was offered; True the first time (start its ignore timer then)."""
        if fix_id in self._shown:
            return False
        self._shown.add(fix_id)
        return True

    def ignored(self, fix_id: str) -> bool:
        """Called when the ignore timer fires: True when the fix was neither applied nor rejected."""
        if fix_id in self._decided:
            return False
        self._decided.add(fix_id)
        return True

    def decided(self, fix_id: str) -> None:
        self._decided.add(fix_id)

    def rejected(self, fix_id: str) -> None:
        self._decided.add(fix_id)
        self._watches.pop(fix_id, None)

    def accepted(self, fix_id: str, uri: str, text: str, original: str, applied: str) -> bool:
        """Start watching the region the fix produced in ``text``; False if it cannot be found."""
        self._decided.add(fix_id)
        start = text.find(applied) if applied else -1
        if start < 0:
            return False
        self._watches[fix_id] = Watch(fix_id, uri, start, start + len(applied), original, applied, text)
        return True

    def watching(self, uri: str | None = None) -> list[Watch]:
        return [w for w in self._watches.values() if uri is None or w.uri == uri]

    def document_changed(self, uri: str, text: str) -> list[Outcome]:
        """Move or grow watched regions after an edit; an undo back to the original is ``reverted``."""
        outcomes = []
        for watch in self.watching(uri):
            start, old_end, new_end = changed_span(watch.text, text)
            delta = new_end - old_end
            if start == old_end == new_end:
                pass  # no change
            elif old_end <= watch.start:
                watch.start += delta
                watch.end += delta
            elif start < watch.end:
                watch.touched = True
                watch.start = min(watch.start, start)
                watch.end = max(watch.end + delta, new_end)
            watch.text = text
            if watch.touched and watch.region() == watch.original:
                outcomes.append(Outcome(watch.fix_id, "reverted"))
                del self._watches[watch.fix_id]
        return outcomes

    def document_checked(self, uri: str, text: str, error_offsets: Iterable[tuple[int, int]]) -> list[Outcome]:
        """After a check of ``text`` (the buffer as saved): decide touched regions free of errors."""
        errors = list(error_offsets)
        outcomes = []
        for watch in self.watching(uri):
            if watch.text != text:
                self.document_changed(uri, text)
                if watch.fix_id not in self._watches:
                    continue
            if not watch.touched or any(s <= watch.end and e >= watch.start for s, e in errors):
                continue
            final = watch.region()
            if final == watch.original:
                outcomes.append(Outcome(watch.fix_id, "reverted"))
            elif final != watch.applied:
                outcomes.append(Outcome(watch.fix_id, "edited", final))
            else:
                watch.touched = False
                continue
            del self._watches[watch.fix_id]
        return outcomes

    def clear(self) -> None:
        self._shown.clear()
        self._decided.clear()
        self._watches.clear()
