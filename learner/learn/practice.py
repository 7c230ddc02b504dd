"""Practice mutations: the gate's evidence from the first night, held out of training for good.

One held-out accepted fix in five starves the gate for weeks of real use (three per route is
the minimum it decides on). Mutations of the user's own crates are plentiful from the first
night, and their fix is known exactly, so a fixed share of them is set aside as *practice*: the
candidate and the current adapters are both scored on them, pair by pair, and a gain must be
larger than noise (:func:`learner.learn.gate.decide`).

The split is by enclosing item: a mutant is practice when its file (relative to the crate) and
the region it must restore hash into one bucket in :data:`PRACTICE_BUCKETS`. Every mutant of the
same item therefore lands on the same side, whatever operator made it, so no practice item is
ever seen in training in another form. The split depends only on the user's code, not on where
the crate lies on disk, so it is the same every night for that user, and after a move or a
fresh clone. Only mutants of the user's crates are practice; the
documentation's mutants stay training data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from learner.config import Settings
from learner.files import JsonLinesError, read_jsonl, write_atomic
from learner.learn.examples import ExampleFormatError, TrainingExample

#: The gate's score lines of practice mutations are named ``practice:<route>``.
PRACTICE_PREFIX = "practice:"
#: One item in this many of the user's crates is practice.
PRACTICE_BUCKETS = 5
#: Practice examples kept per route (enough to separate a real gain from noise; scoring costs time).
PRACTICE_PER_ROUTE = 16
_USER_CRATE = "crate:"


def is_practice(example: TrainingExample, buckets: int = PRACTICE_BUCKETS) -> bool:
    """Is this a held-out practice mutation (a mutant of the user's crate, in the practice bucket)?"""
    if example.source != "mutation" or not example.origin.startswith(_USER_CRATE):
        return False
    key = f"{example.file}\0{example.answer}".encode()
    return int(hashlib.sha256(key).hexdigest()[:8], 16) % buckets == 0


def from_user_crate(origin: str) -> bool:
    """Does a source of this origin (``crate:...``) yield practice mutants (the user's own crates)?"""
    return origin.startswith(_USER_CRATE)


class PracticeCollector:
    """The practice mutants one curriculum run adds, per route up to :data:`PRACTICE_PER_ROUTE`
    counting the set kept from earlier nights, so the curriculum knows which routes still owe the
    gate evidence and keeps mutating the user's crates for them after their training set is full."""

    def __init__(self, settings: Settings, routes: Iterable[str]) -> None:
        self._known = {r: {_key(e) for e in load_practice(settings, [r])} for r in routes}
        #: What this run found, per route (new items only, in the order found).
        self.found: dict[str, list[TrainingExample]] = {r: [] for r in self._known}

    def owed(self, route: str) -> bool:
        return route in self._known and len(self._known[route]) < PRACTICE_PER_ROUTE

    def add(self, example: TrainingExample) -> None:
        key = _key(example)
        if self.owed(example.route) and key not in self._known[example.route]:
            self._known[example.route].add(key)
            self.found[example.route].append(example)


def practice_path(settings: Settings, route: str) -> Path:
    return settings.practice_dir / f"{route}.jsonl"


def write_practice(settings: Settings, examples: Mapping[str, Sequence[TrainingExample]]) -> dict[str, Path]:
    """Add ``examples`` to each route's practice set (kept across nights, at most :data:`PRACTICE_PER_ROUTE`).

    Sets only grow up to the cap and keep their order, so the gate's evidence for a route is
    stable from one night to the next instead of being redrawn.
    """
    written: dict[str, Path] = {}
    for route, new in examples.items():
        if not new:
            continue
        path = practice_path(settings, route)
        kept = load_practice_file(path)
        known = {_key(e) for e in kept}
        for example in new:
            if len(kept) >= PRACTICE_PER_ROUTE:
                break
            if _key(example) not in known:
                kept.append(example)
                known.add(_key(example))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in kept).encode())
        written[route] = path
    return written


def load_practice(settings: Settings, routes: Iterable[str] | None = None) -> list[TrainingExample]:
    """The practice examples of ``routes`` (all routes with a set when None)."""
    folder = settings.practice_dir
    if routes is None:
        paths = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    else:
        paths = [practice_path(settings, r) for r in sorted(set(routes))]
    return [e for path in paths for e in load_practice_file(path)]


def load_practice_file(path: Path) -> list[TrainingExample]:
    """One route's practice set; a missing or unreadable file is an empty set (the gate then says
    it has too little evidence rather than failing the night)."""
    if not path.is_file():
        return []
    try:
        return [TrainingExample.from_json(row) for _, row in read_jsonl(path)]
    except (JsonLinesError, ExampleFormatError):
        return []


def _key(example: TrainingExample) -> str:
    return hashlib.sha256(f"{example.origin}\0{example.broken}".encode()).hexdigest()
