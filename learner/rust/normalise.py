"""One definition of "the same program": comments and whitespace removed, literals kept verbatim.

Deduplication in the curriculum, the learner's benchmark guard and the evaluation's leakage
check all compare sources through :func:`normalise_rust`, exactly (:func:`source_hash`) or by
containment (:class:`SourceIndex`), so they can never disagree about what counts as a copy.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

#: Normalised sources shorter than this are too generic (``fnmain(){}``) to call a containment a leak.
MIN_CONTAINED_CHARS = 30
_TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'|\s+|.', re.S)


def normalise_rust(code: str) -> str:
    """The program without comments or whitespace (string and char literals kept verbatim)."""
    out = []
    for match in _TOKEN.finditer(code):
        token = match.group(0)
        if token.startswith(("//", "/*")) or token.isspace():
            continue
        out.append(token)
    return "".join(out)


def _digest(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def source_hash(code: str) -> str:
    """sha256 of the normalised program: equal for two sources that differ only in comments and layout."""
    return _digest(normalise_rust(code))


@dataclass
class SourceIndex:
    """Normalised sources (exact hashes plus full texts for containment) and counts of what they came from."""

    hashes: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)
    n_sets: int = 0
    n_examples: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, code: str) -> None:
        norm = normalise_rust(code)
        if not norm:
            return
        self.hashes.add(_digest(norm))
        self.texts.append(norm)

    def contains(self, code: str) -> bool:
        """True if ``code`` is in the index exactly or embedded in one of its texts."""
        norm = normalise_rust(code)
        if not norm:
            return False
        if _digest(norm) in self.hashes:
            return True
        return len(norm) >= MIN_CONTAINED_CHARS and any(norm in text for text in self.texts)

    def contained_in(self, code: str) -> bool:
        """True if one of the index's texts is embedded in ``code`` (for whole training prompts)."""
        norm = normalise_rust(code)
        if _digest(norm) in self.hashes:
            return True
        return any(len(text) >= MIN_CONTAINED_CHARS and text in norm for text in self.texts)
