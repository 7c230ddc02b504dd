"""The adapter registry: every trained LoRA version per route and its status
(candidate -> active -> retired, or rejected), with promotion and rollback.

Why apart: status changes are the one place where several rows must change in one transaction
(never zero or two active adapters per route), and the server, learner and gate all depend on
exactly these rules.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from learner.store.db import StoreBase, _dt, _from_row
from learner.store.errors import InvalidRecord, NotFound
from learner.store.records import AdapterVersion


def _adapter(row: Mapping[str, Any]) -> AdapterVersion:
    return _from_row(
        AdapterVersion,
        row,
        created_at=_dt(row["created_at"]),
        status_changed_at=_dt(row["status_changed_at"]),
        metrics=json.loads(row["metrics"]),
    )


class RegistryMixin(StoreBase):
    """Registering, promoting, rejecting and rolling back adapter versions."""

    def adapter(self, version: str) -> AdapterVersion:
        row = self._one("SELECT * FROM adapter_versions WHERE version = ?", (version,))
        if row is None:
            raise NotFound(f"no adapter version {version!r}")
        return _adapter(row)

    def adapters(self, route: str | None = None, status: str | None = None) -> list[AdapterVersion]:
        """Registered versions, newest first."""
        rows = self._rows(
            "SELECT * FROM adapter_versions WHERE (:route IS NULL OR route = :route)"
            " AND (:status IS NULL OR status = :status) ORDER BY created_at DESC, version DESC",
            {"route": route, "status": status},
        )
        return [_adapter(r) for r in rows]

    def active_versions(self, base_model: str | None = None) -> dict[str, AdapterVersion]:
        """The adapter in use for each route (routes without one use the base model).

        With ``base_model``, only adapters trained on that model (or of unrecorded base): an adapter
        changes the weights of the model it was trained on and means nothing for another.
        """
        return {
            a.route: a
            for a in self.adapters(status="active")
            if base_model is None or a.base_model in (None, base_model)
        }

    def register_candidate(
        self,
        version: str,
        *,
        route: str,
        path: Path | str,
        metrics: Mapping[str, Any] | None = None,
        parent_version: str | None = None,
        base_model: str | None = None,
    ) -> AdapterVersion:
        """Register a freshly trained adapter as a candidate (not used until :meth:`promote`)."""
        now = self._now()
        try:
            with self._write() as c:
                c.execute(
                    "INSERT INTO adapter_versions (version, route, path, base_model, created_at, status,"
                    " status_changed_at, metrics, parent_version) VALUES (?, ?, ?, ?, ?, 'candidate', ?, ?, ?)",
                    (
                        version,
                        route,
                        os.fspath(path),
                        base_model,
                        now,
                        now,
                        json.dumps(dict(metrics or {})),
                        parent_version,
                    ),
                )
        except sqlite3.IntegrityError as e:
            raise InvalidRecord(
                f"cannot register adapter {version!r}: the version exists already or parent "
                f"{parent_version!r} is unknown ({e})"
            ) from e
        return self.adapter(version)

    def set_adapter_metrics(self, version: str, metrics: Mapping[str, Any]) -> AdapterVersion:
        """Merge ``metrics`` (eval scores, training stats) into the version's metrics."""
        with self._write() as c:
            row = c.execute("SELECT metrics FROM adapter_versions WHERE version = ?", (version,)).fetchone()
            if row is None:
                raise NotFound(f"no adapter version {version!r}")
            merged = {**json.loads(row[0]), **metrics}
            c.execute("UPDATE adapter_versions SET metrics = ? WHERE version = ?", (json.dumps(merged), version))
        return self.adapter(version)

    def _set_status(self, c: sqlite3.Connection, version: str, status: str) -> None:
        c.execute(
            "UPDATE adapter_versions SET status = ?, status_changed_at = ? WHERE version = ?",
            (status, self._now(), version),
        )

    def _status_of(self, c: sqlite3.Connection, version: str) -> tuple[str, str]:
        row = c.execute("SELECT route, status FROM adapter_versions WHERE version = ?", (version,)).fetchone()
        if row is None:
            raise NotFound(f"no adapter version {version!r}")
        return str(row[0]), str(row[1])

    def promote(self, version: str, *, base_model: str | None = None) -> AdapterVersion:
        """Make ``version`` the active adapter of its route; the previous active one becomes retired.

        One transaction: readers see either the old or the new active adapter, never none or two.
        A retired version can be promoted again (that is how to roll back to a chosen version).
        With ``base_model`` (the model in use), an adapter trained on another base is refused.
        """
        with self._write() as c:
            route, status = self._status_of(c, version)
            if status == "rejected":
                raise InvalidRecord(f"adapter {version!r} was rejected and cannot be promoted")
            (trained_on,) = c.execute(
                "SELECT base_model FROM adapter_versions WHERE version = ?", (version,)
            ).fetchone()
            if base_model is not None and trained_on is not None and trained_on != base_model:
                raise InvalidRecord(
                    f"adapter {version!r} was trained on {trained_on}, not {base_model}; "
                    "adapters are per base model and it cannot be used with this one"
                )
            if status != "active":
                for (old,) in c.execute(
                    "SELECT version FROM adapter_versions WHERE route = ? AND status = 'active'", (route,)
                ).fetchall():
                    self._set_status(c, old, "retired")
                self._set_status(c, version, "active")
        return self.adapter(version)

    def reject(self, version: str, reason: str | None = None) -> AdapterVersion:
        """Mark a candidate (or any version) as not to be used; ``reason`` goes into its metrics."""
        with self._write() as c:
            self._status_of(c, version)
            self._set_status(c, version, "rejected")
            if reason:
                (metrics,) = c.execute("SELECT metrics FROM adapter_versions WHERE version = ?", (version,)).fetchone()
                c.execute(
                    "UPDATE adapter_versions SET metrics = ? WHERE version = ?",
                    (json.dumps({**json.loads(metrics), "rejected_reason": reason}), version),
                )
        return self.adapter(version)

    def rollback(self, version: str) -> AdapterVersion | None:
        """Withdraw the active ``version`` (it becomes rejected) and reactivate what it replaced.

        That is its parent if the parent is retired, else the most recently retired version of
        the route; returns the now-active version, or None when the route falls back to the
        base model. To roll back to a particular version instead, :meth:`promote` it.
        """
        with self._write() as c:
            route, status = self._status_of(c, version)
            if status != "active":
                raise InvalidRecord(f"adapter {version!r} is {status}, not active; nothing to roll back")
            (parent,) = c.execute(
                "SELECT parent_version FROM adapter_versions WHERE version = ?", (version,)
            ).fetchone()
            self._set_status(c, version, "rejected")
            row = c.execute(
                "SELECT version FROM adapter_versions WHERE route = ? AND status = 'retired'"
                " ORDER BY version = ? DESC, status_changed_at DESC LIMIT 1",
                (route, parent),
            ).fetchone()
            if row is None:
                return None
            self._set_status(c, row[0], "active")
        return self.adapter(row[0])
