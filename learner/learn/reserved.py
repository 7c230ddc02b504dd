"""Reserved sites: items of the user's crates the curriculum must never mutate.

An evaluation that lives in the user's code (the simulated user of ``benchmarks/simulated_user.py``)
knows where tomorrow's errors will be. Its measurement is honest only if the night before never
trained on those places, in any form: the curriculum mutates the same crates, so it could
otherwise teach the exact fix of tomorrow's error. A site is an *item* (the function, impl or
type around the change, as the prompt shows it), keyed by its file and its text with layout
removed, so every operator's mutant of that item is excluded, and a reformatted copy still is.

Reserved items are neither training examples nor practice (practice is the gate's evidence:
letting tomorrow's errors decide today's promotion would tune the gate to the test). The user's
own accepted or edited fixes are never excluded: learning from them is the product.

The list is one JSON file in the data folder (:attr:`learner.config.Settings.reserved_sites_path`),
written by the evaluation and read by each night's curriculum; a missing file reserves nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from learner.config import Settings
from learner.files import write_atomic
from learner.learn.examples import TrainingExample
from learner.rust import items
from learner.rust.normalise import normalise_rust


def site_key(file: str, code: str, offset: int) -> str:
    """The key of the item of ``code`` (the whole file ``file``) around byte ``offset``."""
    data = code.encode("utf-8")
    region = items.region_at(file, data, offset)
    text = region.text(data)
    return hashlib.sha256(f"{file}\0{normalise_rust(text)}".encode()).hexdigest()[:24]


def changed_offset(before: str, after: str) -> int:
    """Byte offset in ``after`` where it first differs from ``before`` (the end when equal)."""
    a, b = before.encode("utf-8"), after.encode("utf-8")
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def example_site(example: TrainingExample) -> str | None:
    """The site a mutation example teaches (its item in the correct file); None for a user's fix."""
    if example.source != "mutation" or not example.fixed:
        return None
    return site_key(example.file, example.fixed, changed_offset(example.broken, example.fixed))


def load_reserved(settings: Settings) -> frozenset[str]:
    """The reserved site keys; none when the file is missing or unreadable (nothing is held back)."""
    try:
        value = json.loads(settings.reserved_sites_path.read_text())
    except (OSError, ValueError):
        return frozenset()
    sites = value.get("sites") if isinstance(value, dict) else None
    return frozenset(str(s) for s in sites) if isinstance(sites, list) else frozenset()


def write_reserved(settings: Settings, keys: Iterable[str]) -> None:
    """Replace the reserved list with ``keys``."""
    path = settings.reserved_sites_path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"sites": sorted(set(keys))}, indent=1).encode())
