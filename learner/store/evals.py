"""Eval runs (one strategy, model and adapter set, over seeds) and their per-case results.

Why apart from the feedback: these rows are written by the eval harness, not the editor, hold
no user code (``forget`` keeps them), and are read by reports and the promotion gate.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from learner.store.db import StoreBase, _dt, _from_row, _opt_bool, _opt_dt
from learner.store.errors import NotFound
from learner.store.records import EvalCaseResult, EvalRun


def _run(row: Mapping[str, Any]) -> EvalRun:
    return _from_row(
        EvalRun,
        row,
        adapter_versions=json.loads(row["adapter_versions"]),
        seeds=tuple(json.loads(row["seeds"])),
        started_at=_dt(row["started_at"]),
        finished_at=_opt_dt(row["finished_at"]),
        meta=json.loads(row["meta"]),
    )


class EvalMixin(StoreBase):
    """Starting, filling, finishing and reading eval runs."""

    def start_eval_run(
        self,
        strategy: str,
        *,
        model: str = "",
        adapter_versions: Mapping[str, str] | None = None,
        project_version: str = "",
        seeds: Iterable[int] = (0,),
        attempts: int = 1,
        meta: Mapping[str, Any] | None = None,
    ) -> int:
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO eval_runs (strategy, model, adapter_versions, project_version, seeds, attempts,"
                " started_at, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    strategy,
                    model,
                    json.dumps(dict(adapter_versions or {})),
                    project_version,
                    json.dumps(list(seeds)),
                    attempts,
                    self._now(),
                    json.dumps(dict(meta or {})),
                ),
            )
            return int(cur.lastrowid or 0)

    def record_eval_result(
        self,
        run_id: int,
        *,
        case_id: str,
        source: str,
        route: str,
        passed: bool,
        seed: int = 0,
        attempts_used: int = 1,
        reason: str = "",
        exact_match: bool | None = None,
        edit_size: int | None = None,
        ref_edit_size: int | None = None,
        latency_s: float = 0.0,
        candidate: str | None = None,
    ) -> None:
        """Record one case's result; recording the same (case, seed, source) again replaces it."""
        try:
            with self._write() as c:
                c.execute(
                    "INSERT OR REPLACE INTO eval_results (run_id, case_id, source, route, seed, passed,"
                    " attempts_used, reason, exact_match, edit_size, ref_edit_size, latency_s, candidate,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        case_id,
                        source,
                        route,
                        seed,
                        int(passed),
                        attempts_used,
                        reason,
                        None if exact_match is None else int(exact_match),
                        edit_size,
                        ref_edit_size,
                        latency_s,
                        candidate,
                        self._now(),
                    ),
                )
        except sqlite3.IntegrityError as e:
            raise NotFound(f"no eval run with id {run_id}") from e

    def finish_eval_run(self, run_id: int, meta: Mapping[str, Any] | None = None) -> EvalRun:
        """Mark the run finished (it then shows in :meth:`latest_runs`); ``meta`` is merged in."""
        run = self.eval_run(run_id)
        with self._write() as c:
            c.execute(
                "UPDATE eval_runs SET finished_at = ?, meta = ? WHERE id = ?",
                (self._now(), json.dumps({**run.meta, **(meta or {})}), run_id),
            )
        return self.eval_run(run_id)

    def eval_run(self, run_id: int) -> EvalRun:
        row = self._one("SELECT * FROM eval_runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFound(f"no eval run with id {run_id}")
        return _run(row)

    def eval_results(self, run_id: int) -> list[EvalCaseResult]:
        rows = self._rows("SELECT * FROM eval_results WHERE run_id = ? ORDER BY case_id, seed, source", (run_id,))
        return [
            _from_row(EvalCaseResult, r, passed=bool(r["passed"]), exact_match=_opt_bool(r["exact_match"]))
            for r in rows
        ]

    def latest_runs(self, strategy: str | None = None, *, limit: int = 10, finished_only: bool = True) -> list[EvalRun]:
        """Newest runs first, optionally of one strategy; unfinished (crashed) runs are skipped by default."""
        rows = self._rows(
            "SELECT * FROM eval_runs WHERE (:strategy IS NULL OR strategy = :strategy)"
            " AND (:all OR finished_at IS NOT NULL) ORDER BY started_at DESC, id DESC LIMIT :limit",
            {"strategy": strategy, "all": int(not finished_only), "limit": limit},
        )
        return [_run(r) for r in rows]
