"""Forgetting the user's data: every copy of the user's code that sleepy-coder made, in one call.

What it removes: the store's diagnostics, fixes and outcomes (rows zeroed on delete, the
write-ahead log truncated), the training sets built from them (files included), and, when
everything is forgotten, the copies of the user's crates: scratch mirrors, cargo's target dirs
(incremental caches hold source), and the curriculum's cache of checked mutants. It never
deletes a path outside this data home: a training set recorded at a path elsewhere (a copied
home's database naming the original's files) loses its row, not the file.

The command line (``data forget``, ``data retention``), the editor's "forget my data" command
and the learner's retention at the start of each cycle all go through here.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from learner.config import Settings
from learner.store import Store, TrainingSetRecord


@dataclass(frozen=True)
class Forgotten:
    """What was deleted: rows per table and the training-set files removed."""

    counts: dict[str, int]
    files: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def remove_training_files(settings: Settings, sets: Iterable[TrainingSetRecord]) -> tuple[str, ...]:
    """Delete the files of forgotten training sets inside this home's training dir; return the paths removed."""
    home = settings.training_dir.resolve()
    removed = []
    for training_set in sets:
        path = Path(training_set.path)
        if not path.resolve().is_relative_to(home):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(str(path))
    return tuple(removed)


def user_code_caches(settings: Settings) -> tuple[Path, ...]:
    """The folders that hold copies of the user's code and can be rebuilt (all under the cache dir)."""
    return (settings.scratch_dir, settings.targets_dir, settings.cache_dir / "curriculum")


def forget(settings: Settings, store: Store, before: datetime | None = None) -> Forgotten:
    """Delete every recorded diagnostic, fix and outcome (older than ``before``) and what was built from them."""
    report = store.forget(before=before)
    files = remove_training_files(settings, report.training_sets)
    if before is None:
        for folder in user_code_caches(settings):
            shutil.rmtree(folder, ignore_errors=True)
    return Forgotten(dict(report.counts), files)


def apply_retention(settings: Settings, store: Store, days: int) -> Forgotten:
    """Keep the last ``days`` days of records (0: keep everything) and remove the training files of the rest."""
    report = store.apply_retention(days)
    return Forgotten(dict(report.counts), remove_training_files(settings, report.training_sets))
