"""Forgetting the user's data: the store's records and every training file built from them, in one call.

The command line (``data forget``, ``data retention``), the editor's "forget my data" command
and the learner's retention at the start of each cycle all go through here, so what "forget"
removes is decided in one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from learner.store import Store, TrainingSetRecord


@dataclass(frozen=True)
class Forgotten:
    """What was deleted: rows per table and the training-set files removed."""

    counts: dict[str, int]
    files: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def remove_training_files(sets: Iterable[TrainingSetRecord]) -> tuple[str, ...]:
    """Delete the files of forgotten training sets (a missing file is fine); return the paths removed."""
    removed = []
    for training_set in sets:
        path = Path(training_set.path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(str(path))
    return tuple(removed)


def forget(store: Store, before: datetime | None = None) -> Forgotten:
    """Delete every recorded diagnostic, fix and outcome (older than ``before``) and their training files."""
    report = store.forget(before=before)
    return Forgotten(dict(report.counts), remove_training_files(report.training_sets))


def apply_retention(store: Store, days: int) -> Forgotten:
    """Keep the last ``days`` days of records (0: keep everything) and remove the training files of the rest."""
    report = store.apply_retention(days)
    return Forgotten(dict(report.counts), remove_training_files(report.training_sets))
