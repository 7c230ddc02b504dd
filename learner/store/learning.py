"""The learner's own bookkeeping: its cycles (each idle-time run's state and outcome, which
``status`` shows and a restarted learner closes) and the training sets it derived from the
user's fixes.

Why apart from the registry: these rows describe the learner's work, not what the server
serves. Training sets are the one derived artefact that holds user code, so ``forget`` (in
:mod:`learner.store.data`) reads them through :func:`training_set_record`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from learner.store.db import StoreBase, _dt, _from_row, _opt_dt
from learner.store.errors import NotFound
from learner.store.records import LearnerCycle, TrainingSetRecord


def _cycle(row: Mapping[str, Any]) -> LearnerCycle:
    return _from_row(
        LearnerCycle,
        row,
        started_at=_dt(row["started_at"]),
        finished_at=_opt_dt(row["finished_at"]),
        details=json.loads(row["details"]),
    )


def training_set_record(row: Mapping[str, Any]) -> TrainingSetRecord:
    """A ``training_sets`` row as its record (also used by ``forget`` to report what it deleted)."""
    return _from_row(
        TrainingSetRecord,
        row,
        created_at=_dt(row["created_at"]),
        source_fix_ids=tuple(json.loads(row["source_fix_ids"])),
    )


class LearningMixin(StoreBase):
    """Learner cycles and the training sets derived for each route."""

    # ------------------------------------------------------------------ learner cycles

    def start_cycle(self, state: str = "started", details: Mapping[str, Any] | None = None) -> int:
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO learner_cycles (started_at, state, details) VALUES (?, ?, ?)",
                (self._now(), state, json.dumps(dict(details or {}))),
            )
            return int(cur.lastrowid or 0)

    def update_cycle(
        self, cycle_id: int, *, state: str | None = None, details: Mapping[str, Any] | None = None
    ) -> LearnerCycle:
        """Move a cycle to a new ``state``; ``details`` are merged into the recorded ones."""
        return self._change_cycle(cycle_id, state=state, details=details, outcome=None, finish=False)

    def finish_cycle(self, cycle_id: int, outcome: str, details: Mapping[str, Any] | None = None) -> LearnerCycle:
        return self._change_cycle(cycle_id, state="finished", details=details, outcome=outcome, finish=True)

    def _change_cycle(
        self,
        cycle_id: int,
        *,
        state: str | None,
        details: Mapping[str, Any] | None,
        outcome: str | None,
        finish: bool,
    ) -> LearnerCycle:
        with self._write() as c:
            row = c.execute("SELECT state, details, outcome FROM learner_cycles WHERE id = ?", (cycle_id,)).fetchone()
            if row is None:
                raise NotFound(f"no learner cycle with id {cycle_id}")
            c.execute(
                "UPDATE learner_cycles SET state = ?, details = ?, outcome = ?,"
                " finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
                (
                    state or row[0],
                    json.dumps({**json.loads(row[1]), **(details or {})}),
                    outcome if outcome is not None else row[2],
                    int(finish),
                    self._now(),
                    cycle_id,
                ),
            )
        return self.cycles(cycle_id=cycle_id)[0]

    def cycles(self, limit: int = 20, *, cycle_id: int | None = None) -> list[LearnerCycle]:
        """Newest cycles first."""
        rows = self._rows(
            "SELECT * FROM learner_cycles WHERE (:id IS NULL OR id = :id) ORDER BY id DESC LIMIT :limit",
            {"id": cycle_id, "limit": limit},
        )
        return [_cycle(r) for r in rows]

    # ------------------------------------------------------------------ training sets

    def record_training_set(
        self, route: str, path: Path | str, *, n_examples: int, sha: str, source_fix_ids: Iterable[str]
    ) -> TrainingSetRecord:
        """Remember a derived training file and which fixes it came from (so ``forget`` can find it)."""
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO training_sets (route, path, n_examples, sha, created_at, source_fix_ids)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (route, os.fspath(path), n_examples, sha, self._now(), json.dumps(sorted(set(source_fix_ids)))),
            )
            new_id = cur.lastrowid
        return self.training_sets(set_id=new_id)[0]

    def training_sets(self, route: str | None = None, *, set_id: int | None = None) -> list[TrainingSetRecord]:
        rows = self._rows(
            "SELECT * FROM training_sets WHERE (:route IS NULL OR route = :route)"
            " AND (:id IS NULL OR id = :id) ORDER BY id",
            {"route": route, "id": set_id},
        )
        return [training_set_record(r) for r in rows]
