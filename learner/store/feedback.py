"""What the editor's server records (diagnostics, the fixes it offered, what the user did with them,
heartbeats) and what the learner reads back from it (training examples and counts).

Why together: these tables are written by the LSP server and only ever read as a whole, joined
along diagnostic -> suggestion -> outcome; the queries that join them live next to the writes
that define what the rows mean.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from learner.records import Edit, FixCandidate, RustDiagnostic
from learner.store.data import EXPORT_TABLES
from learner.store.db import StoreBase, _dt, _from_row, _iso, _sha
from learner.store.errors import InvalidRecord, NotFound
from learner.store.records import (
    ACCEPTED_WEIGHT,
    EDITED_WEIGHT,
    HEARTBEAT_SOURCES,
    OUTCOME_KINDS,
    AcceptedFix,
    DiagnosticRecord,
    FixRecord,
    OutcomeRecord,
)

#: The newest suggestion row per fix_id: the same fix offered twice is one fix.
_LATEST_FIX = "latest_fix AS (SELECT * FROM suggestions WHERE id IN (SELECT MAX(id) FROM suggestions GROUP BY fix_id))"


def _edits_json(edits: Iterable[Edit]) -> str:
    return json.dumps(
        [{"file": e.file, "byte_start": e.byte_start, "byte_end": e.byte_end, "new_text": e.new_text} for e in edits]
    )


def _edits(text: str) -> tuple[Edit, ...]:
    return tuple(Edit(d["file"], d["byte_start"], d["byte_end"], d["new_text"]) for d in json.loads(text))


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise InvalidRecord(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


def _fix(row: Mapping[str, Any]) -> FixRecord:
    return _from_row(
        FixRecord,
        row,
        edits=_edits(row["edits_json"]),
        verified=bool(row["verified"]),
        created_at=_dt(row["created_at"]),
    )


class FeedbackMixin(StoreBase):
    """Diagnostics, offered fixes, outcomes and heartbeats; accepted examples and counts for the learner."""

    # ------------------------------------------------------------------ diagnostics and fixes

    def record_diagnostic(
        self,
        diag: RustDiagnostic,
        *,
        crate: Path | str,
        route: str,
        toolchain: str = "",
        edition: str = "",
        context: str = "",
    ) -> int:
        """Store a diagnostic with its enclosing item (``context``, the only user code kept); return its id.

        The same diagnostic in the same code (crate, file, key, context) is one row; seeing it
        again only refreshes ``last_seen_at`` (which retention counts from).
        """
        span = diag.primary_span
        now = self._now()
        values = {
            "crate": os.fspath(crate),
            "file": span.file if span else "",
            "code": diag.code,
            "route": route,
            "level": diag.level,
            "message": diag.message,
            "rendered": diag.rendered,
            "toolchain": toolchain,
            "edition": edition,
            "context": context,
            "context_sha": _sha(context),
            "diag_key": diag.key,
            "now": now,
        }
        with self._write() as c:
            row = c.execute(
                "INSERT INTO diagnostics (created_at, last_seen_at, crate, file, code, route, level, message,"
                " rendered, toolchain, edition, context, context_sha, diag_key)"
                " VALUES (:now, :now, :crate, :file, :code, :route, :level, :message, :rendered, :toolchain,"
                " :edition, :context, :context_sha, :diag_key)"
                " ON CONFLICT (crate, file, diag_key, context_sha) DO UPDATE SET last_seen_at = excluded.last_seen_at,"
                " route = excluded.route, toolchain = excluded.toolchain, edition = excluded.edition",
                values,
            )
            row = c.execute(
                "SELECT id FROM diagnostics WHERE crate = :crate AND file = :file AND diag_key = :diag_key"
                " AND context_sha = :context_sha",
                values,
            ).fetchone()
        return int(row[0])

    def diagnostic(self, diagnostic_id: int) -> DiagnosticRecord:
        row = self._one("SELECT * FROM diagnostics WHERE id = ?", (diagnostic_id,))
        if row is None:
            raise NotFound(f"no diagnostic with id {diagnostic_id}")
        return _from_row(
            DiagnosticRecord, row, created_at=_dt(row["created_at"]), last_seen_at=_dt(row["last_seen_at"])
        )

    def record_suggestion(
        self,
        diagnostic_id: int,
        candidate: FixCandidate,
        *,
        before_text: str,
        after_text: str,
        verified: bool,
        verdict_reason: str = "",
    ) -> FixRecord:
        """Store a fix offered for a diagnostic (enclosing item before/after it); return its record.

        Offering the same fix for the same diagnostic again updates the verdict and timing.
        """
        values = {
            "fix_id": candidate.fix_id,
            "diagnostic_id": diagnostic_id,
            "source": candidate.source,
            "title": candidate.title,
            "model": candidate.model,
            "adapter_version": candidate.adapter_version,
            "prompt_hash": candidate.prompt_hash,
            "latency_s": candidate.latency_s,
            "attempt": candidate.attempt,
            "edits_json": _edits_json(candidate.edits),
            "before_text": before_text,
            "after_text": after_text,
            "verified": int(verified),
            "verdict_reason": verdict_reason,
            "created_at": self._now(),
        }
        columns = ", ".join(values)
        placeholders = ", ".join(f":{k}" for k in values)
        updates = ", ".join(f"{k} = excluded.{k}" for k in values if k not in ("fix_id", "diagnostic_id", "created_at"))
        try:
            with self._write() as c:
                c.execute(
                    f"INSERT INTO suggestions ({columns}) VALUES ({placeholders})"
                    f" ON CONFLICT (diagnostic_id, fix_id) DO UPDATE SET {updates}",
                    values,
                )
        except sqlite3.IntegrityError as e:
            raise NotFound(f"no diagnostic with id {diagnostic_id} to attach fix {candidate.fix_id} to") from e
        row = self._one(
            "SELECT * FROM suggestions WHERE diagnostic_id = ? AND fix_id = ?", (diagnostic_id, candidate.fix_id)
        )
        assert row is not None  # Just written; forget() in between is the only way to lose it.
        return _fix(row)

    def fix(self, fix_id: str) -> FixRecord | None:
        """The latest offer of ``fix_id`` (the same fix can be offered for several diagnostic rows)."""
        row = self._one("SELECT * FROM suggestions WHERE fix_id = ? ORDER BY id DESC LIMIT 1", (fix_id,))
        return _fix(row) if row else None

    def fixes_for(self, diagnostic_id: int) -> list[FixRecord]:
        return [
            _fix(r)
            for r in self._rows("SELECT * FROM suggestions WHERE diagnostic_id = ? ORDER BY id", (diagnostic_id,))
        ]

    def record_outcome(self, fix_id: str, kind: str, final_code: str | None = None) -> bool:
        """Record what the user did with a fix; True if this (fix_id, kind) is new.

        Recording the same kind again keeps one row (the latest non-empty ``final_code`` wins),
        so retries and duplicate editor events are harmless. ``edited`` needs ``final_code``.
        """
        _check_choice(kind, OUTCOME_KINDS, "outcome kind")
        if kind == "edited" and not final_code:
            raise InvalidRecord(f"an 'edited' outcome for fix {fix_id} needs the user's final code")
        with self._write() as c:
            if c.execute("SELECT 1 FROM suggestions WHERE fix_id = ? LIMIT 1", (fix_id,)).fetchone() is None:
                raise NotFound(f"no offered fix with id {fix_id!r}; record the suggestion before its outcome")
            existing = c.execute("SELECT id FROM outcomes WHERE fix_id = ? AND kind = ?", (fix_id, kind)).fetchone()
            if existing is not None:
                if final_code is not None:
                    c.execute("UPDATE outcomes SET final_code = ? WHERE id = ?", (final_code, existing[0]))
                return False
            c.execute(
                "INSERT INTO outcomes (fix_id, kind, final_code, created_at) VALUES (?, ?, ?, ?)",
                (fix_id, kind, final_code, self._now()),
            )
            return True

    def outcomes(self, fix_id: str | None = None) -> list[OutcomeRecord]:
        where, params = ("WHERE fix_id = ?", (fix_id,)) if fix_id is not None else ("", ())
        return [
            _from_row(OutcomeRecord, r, created_at=_dt(r["created_at"]))
            for r in self._rows(f"SELECT * FROM outcomes {where} ORDER BY id", params)
        ]

    # ------------------------------------------------------------------ heartbeats

    def heartbeat(self, source: str) -> None:
        """Say that ``source`` ('server' or 'learner') is alive now."""
        _check_choice(source, HEARTBEAT_SOURCES, "heartbeat source")
        with self._write() as c:
            c.execute(
                "INSERT INTO heartbeats (source, at) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET at = excluded.at",
                (source, self._now()),
            )

    def last_heartbeat(self, source: str) -> datetime | None:
        row = self._one("SELECT at FROM heartbeats WHERE source = ?", (source,))
        return _dt(row["at"]) if row else None

    # ------------------------------------------------------------------ learning queries

    def accepted_fixes(self, route: str | None = None, since: datetime | None = None) -> list[AcceptedFix]:
        """Training targets: accepted fixes (target = the fix's result) and edited ones (target = the
        user's final code, ``edited=True``, weight :data:`EDITED_WEIGHT`).

        A fix that was also rejected or reverted is never a target; ignored-only fixes are not either.
        ``since`` filters on when the accept/edit was recorded; oldest first.
        """
        sql = f"""
            WITH {_LATEST_FIX}
            SELECT s.*, d.route, d.code, d.message, d.rendered, d.file, d.context, d.toolchain, d.edition,
                   acc.created_at AS accepted_at, ed.final_code AS edited_code, ed.created_at AS edited_at
            FROM latest_fix s
            JOIN diagnostics d ON d.id = s.diagnostic_id
            LEFT JOIN outcomes acc ON acc.fix_id = s.fix_id AND acc.kind = 'accepted'
            LEFT JOIN outcomes ed ON ed.fix_id = s.fix_id AND ed.kind = 'edited'
            WHERE (acc.id IS NOT NULL OR ed.id IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM outcomes n WHERE n.fix_id = s.fix_id AND n.kind IN ('rejected', 'reverted'))
              AND (:route IS NULL OR d.route = :route)
              AND (:since IS NULL OR COALESCE(ed.created_at, acc.created_at) >= :since)
            ORDER BY COALESCE(ed.created_at, acc.created_at), s.id
        """
        rows = self._rows(sql, {"route": route, "since": _iso(since) if since else None})
        examples = []
        for r in rows:
            edited = r["edited_code"] is not None
            examples.append(
                _from_row(
                    AcceptedFix,
                    r,
                    target=r["edited_code"] if edited else r["after_text"],
                    edited=edited,
                    weight=EDITED_WEIGHT if edited else ACCEPTED_WEIGHT,
                    verified=bool(r["verified"]),
                    recorded_at=_dt(r["edited_at"] if edited else r["accepted_at"]),
                )
            )
        return examples

    def route_counts(self) -> dict[str, dict[str, int]]:
        """How many outcomes of each kind each route has collected (what the learner trains on)."""
        rows = self._rows(
            f"""WITH {_LATEST_FIX}
            SELECT d.route AS route, o.kind AS kind, COUNT(*) AS n
            FROM outcomes o JOIN latest_fix s ON s.fix_id = o.fix_id JOIN diagnostics d ON d.id = s.diagnostic_id
            GROUP BY d.route, o.kind"""
        )
        result: dict[str, dict[str, int]] = {}
        for r in rows:
            result.setdefault(r["route"], {})[r["kind"]] = r["n"]
        return result

    def counts(self) -> dict[str, int]:
        """Rows per table plus outcomes per kind, for ``status`` displays."""
        with self._lock:
            result = {t: int(self._db[t].count) for t in EXPORT_TABLES}
        by_kind = {r["kind"]: r["n"] for r in self._rows("SELECT kind, COUNT(*) AS n FROM outcomes GROUP BY kind")}
        result.update({kind: int(by_kind.get(kind, 0)) for kind in OUTCOME_KINDS})
        return result
