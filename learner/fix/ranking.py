"""Choosing among several verified candidates for one error: drop duplicates, smallest edit first.

Why these rules: a fix that changes fewer lines is easier to review and less likely to change
behaviour the user wanted; between equally small fixes the model's own confidence (its mean
log-probability per token) breaks the tie. Pure functions over records and bytes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from learner.records import Edit, FixCandidate


def edits_key(edits: Iterable[Edit]) -> tuple[tuple[str, int, int, str], ...]:
    """What makes two candidates the same fix: the same edits, in any order."""
    return tuple(sorted((e.file, e.byte_start, e.byte_end, e.new_text) for e in edits))


def changed_lines(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> int:
    """Lines added or removed between ``before`` and ``after`` (file -> bytes), over all files."""
    total = 0
    for file in sorted(set(before) | set(after)):
        old = before.get(file, b"").decode("utf-8", "replace").splitlines()
        new = after.get(file, b"").decode("utf-8", "replace").splitlines()
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag != "equal":
                total += (i2 - i1) + (j2 - j1)
    return total


@dataclass(frozen=True)
class Scored:
    """A candidate with what ranking needs: its edit's size and the model's confidence."""

    candidate: FixCandidate
    changed_lines: int
    mean_logprob: float | None


def rank(scored: Sequence[Scored]) -> list[Scored]:
    """Smallest edit first, then the most confident; the order is stable for exact ties."""
    return sorted(scored, key=lambda s: (s.changed_lines, -(s.mean_logprob if s.mean_logprob is not None else -1e9)))


def unique(candidates: Iterable[FixCandidate]) -> list[FixCandidate]:
    """The first candidate of each distinct fix (a batch of samples often repeats itself)."""
    seen: set[tuple[tuple[str, int, int, str], ...]] = set()
    kept = []
    for candidate in candidates:
        key = edits_key(candidate.edits)
        if key not in seen:
            seen.add(key)
            kept.append(candidate)
    return kept


#: Longest code quoted in a fix's title (menus cut long titles anyway).
TITLE_CODE_CHARS = 48


def _quoted(line: str) -> str:
    text = " ".join(line.split())
    return f"`{text if len(text) <= TITLE_CODE_CHARS else text[: TITLE_CODE_CHARS - 1] + '…'}`"


def fix_title(before: Mapping[str, bytes], after: Mapping[str, bytes], prefix: str = "sleepy-coder") -> str:
    """A menu title that says what a verified fix does: its first changed line, e.g.
    ``sleepy-coder: let counter = 0; -> let mut counter = 0;`` (``+N lines`` when it changes more)."""
    changes: list[tuple[list[str], list[str]]] = []
    for file in sorted(set(before) | set(after)):
        old = before.get(file, b"").decode("utf-8", "replace").splitlines()
        new = after.get(file, b"").decode("utf-8", "replace").splitlines()
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag != "equal":
                changes.append(([x for x in old[i1:i2] if x.strip()], [x for x in new[j1:j2] if x.strip()]))
    if not changes:
        return f"{prefix}: fix"
    removed, added = changes[0]
    if removed and added:
        what = f"{_quoted(removed[0])} -> {_quoted(added[0])}"
    elif added:
        what = f"add {_quoted(added[0])}"
    else:
        what = f"remove {_quoted(removed[0]) if removed else 'blank lines'}"
    more = sum(max(len(r), len(a)) for r, a in changes) - 1
    return f"{prefix}: {what}" + (f" (+{more} more line{'s' if more > 1 else ''})" if more > 0 else "")
