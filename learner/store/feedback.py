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
import uuid
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
    KeptRange,
    OfferRecord,
    OutcomeRecord,
)

#: Later decisions replace earlier ones on the same offer, except that ``ignored`` (a timer) never
#: replaces a decision and a repeated ``accepted`` never undoes the ``edited``/``reverted`` that
#: watching the applied fix found.
_KEEPS = {"ignored": set(OUTCOME_KINDS), "accepted": {"edited", "reverted"}}

#: An outcome joined to the offer, fix and diagnostic it belongs to.
_OUTCOME_JOIN = """
    FROM outcomes o
    JOIN offers f ON f.offer_id = o.offer_id
    JOIN suggestions s ON s.id = f.suggestion_id
    JOIN diagnostics d ON d.id = s.diagnostic_id
"""


def _edits_json(edits: Iterable[Edit]) -> str:
    return json.dumps(
        [{"file": e.file, "byte_start": e.byte_start, "byte_end": e.byte_end, "new_text": e.new_text} for e in edits]
    )


def _edits(text: str) -> tuple[Edit, ...]:
    return tuple(Edit(d["file"], d["byte_start"], d["byte_end"], d["new_text"]) for d in json.loads(text))


def new_offer_id() -> str:
    """A fresh offer id: unique across crates, days and processes."""
    return f"o-{uuid.uuid4().hex}"


def _ranges_json(ranges: Iterable[KeptRange]) -> str:
    return json.dumps([{"file": r.file, "text": r.text} for r in ranges], ensure_ascii=False)


def _ranges(text: str | None) -> tuple[KeptRange, ...]:
    return tuple(KeptRange(d["file"], d["text"]) for d in json.loads(text)) if text else ()


#: An offer with the fix it shows (one query, for one offer or many).
_OFFER_SELECT = (
    "SELECT f.offer_id, f.document_uri, f.document_version, f.created_at AS offered_at, s.*"
    " FROM offers f JOIN suggestions s ON s.id = f.suggestion_id"
)


def _offer(row: Mapping[str, Any]) -> OfferRecord:
    return OfferRecord(
        offer_id=row["offer_id"],
        fix=_fix(row),
        document_uri=row["document_uri"],
        document_version=row["document_version"],
        created_at=_dt(row["offered_at"]),
    )


def _outcome(row: Mapping[str, Any]) -> OutcomeRecord:
    return _from_row(
        OutcomeRecord,
        row,
        final_ranges=_ranges(row["final_ranges"]),
        created_at=_dt(row["created_at"]),
        updated_at=_dt(row["updated_at"]),
    )


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
        """The latest suggestion row of ``fix_id`` (the same fix can be offered for several diagnostic rows)."""
        row = self._one("SELECT * FROM suggestions WHERE fix_id = ? ORDER BY id DESC LIMIT 1", (fix_id,))
        return _fix(row) if row else None

    def fixes_for(self, diagnostic_id: int) -> list[FixRecord]:
        return [
            _fix(r)
            for r in self._rows("SELECT * FROM suggestions WHERE diagnostic_id = ? ORDER BY id", (diagnostic_id,))
        ]

    # ------------------------------------------------------------------ offers and outcomes

    def record_offer(
        self,
        diagnostic_id: int,
        candidate: FixCandidate,
        *,
        before_text: str,
        after_text: str,
        verified: bool,
        verdict_reason: str = "",
        offer_id: str | None = None,
        document_uri: str = "",
        document_version: int | None = None,
    ) -> OfferRecord:
        """Store one showing of a fix (the fix row is shared by every showing of it); return the offer.

        Recording the same ``offer_id`` again returns the existing offer, so a retried write adds nothing.
        """
        fix = self.record_suggestion(
            diagnostic_id,
            candidate,
            before_text=before_text,
            after_text=after_text,
            verified=verified,
            verdict_reason=verdict_reason,
        )
        return self.record_offer_of(
            fix, offer_id=offer_id, document_uri=document_uri, document_version=document_version
        )

    def record_offer_of(
        self,
        fix: FixRecord,
        *,
        offer_id: str | None = None,
        document_uri: str = "",
        document_version: int | None = None,
    ) -> OfferRecord:
        """Store one more showing of an already recorded fix; the same ``offer_id`` twice is one offer."""
        offer_id = offer_id or new_offer_id()
        with self._write() as c:
            c.execute(
                "INSERT INTO offers (offer_id, suggestion_id, document_uri, document_version, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (offer_id) DO NOTHING",
                (offer_id, fix.id, document_uri, document_version, self._now()),
            )
        offer = self.offer(offer_id)
        if offer is None:
            raise NotFound(f"no fix with id {fix.id} to offer (forgotten meanwhile?)")
        return offer

    def offer(self, offer_id: str) -> OfferRecord | None:
        row = self._one(f"{_OFFER_SELECT} WHERE f.offer_id = ?", (offer_id,))
        return _offer(row) if row is not None else None

    def offers(self, fix_id: str | None = None) -> list[OfferRecord]:
        """Every offer (of ``fix_id``), oldest first."""
        where, params = ("WHERE s.fix_id = ?", (fix_id,)) if fix_id is not None else ("", ())
        return [_offer(r) for r in self._rows(f"{_OFFER_SELECT} {where} ORDER BY f.id", params)]

    def record_outcome(
        self,
        offer_id: str,
        kind: str,
        final_code: str | None = None,
        final_ranges: Iterable[KeptRange] = (),
    ) -> bool:
        """Record what the user did with an offer; True if the offer's outcome changed.

        One row per offer holds its latest decision: an accepted fix the user then edits becomes
        ``edited``; ``ignored`` never replaces a decision, and a duplicate editor event changes
        nothing. ``edited`` needs ``final_code`` (the enclosing items as the user left them).
        """
        _check_choice(kind, OUTCOME_KINDS, "outcome kind")
        if kind == "edited" and not final_code:
            raise InvalidRecord(f"an 'edited' outcome for offer {offer_id} needs the user's final code")
        ranges = _ranges_json(final_ranges) if kind == "edited" else None
        now = self._now()
        with self._write() as c:
            found = c.execute(
                "SELECT s.fix_id FROM offers f JOIN suggestions s ON s.id = f.suggestion_id WHERE f.offer_id = ?",
                (offer_id,),
            ).fetchone()
            if found is None:
                raise NotFound(f"no offer with id {offer_id!r}; record the offer before its outcome")
            existing = c.execute("SELECT id, kind FROM outcomes WHERE offer_id = ?", (offer_id,)).fetchone()
            if existing is None:
                c.execute(
                    "INSERT INTO outcomes (offer_id, fix_id, kind, final_code, final_ranges, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (offer_id, found[0], kind, final_code, ranges, now, now),
                )
                return True
            if existing[1] == kind or existing[1] in _KEEPS.get(kind, ()):
                return False
            c.execute(
                "UPDATE outcomes SET kind = ?, final_code = ?, final_ranges = ?, updated_at = ? WHERE id = ?",
                (kind, final_code, ranges, now, existing[0]),
            )
            return True

    def outcome(self, offer_id: str) -> OutcomeRecord | None:
        row = self._one("SELECT * FROM outcomes WHERE offer_id = ?", (offer_id,))
        return _outcome(row) if row else None

    def outcomes(self, fix_id: str | None = None) -> list[OutcomeRecord]:
        """Every offer's outcome (of offers of ``fix_id``), in the order they were first decided."""
        where, params = ("WHERE fix_id = ?", (fix_id,)) if fix_id is not None else ("", ())
        return [_outcome(r) for r in self._rows(f"SELECT * FROM outcomes {where} ORDER BY id", params)]

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
        """Training targets: offers the user accepted (target = the fix's result) or edited (target =
        the user's final code, ``edited=True``, weight :data:`EDITED_WEIGHT`).

        Each offer is its own decision: the same fix rejected in one crate and accepted in another
        is one accepted example. The content hash deduplicates: one example per (fix, target),
        the newest decision's. ``since`` filters on when the decision was recorded; oldest first.
        """
        sql = f"""
            SELECT s.*, d.route, d.code, d.message, d.rendered, d.file, d.context, d.toolchain, d.edition,
                   o.offer_id, o.kind, o.final_code, o.updated_at AS decided_at, o.id AS outcome_id
            {_OUTCOME_JOIN}
            WHERE o.kind IN ('accepted', 'edited')
              AND (:route IS NULL OR d.route = :route)
              AND (:since IS NULL OR o.updated_at >= :since)
            ORDER BY o.updated_at, o.id
        """
        rows = self._rows(sql, {"route": route, "since": _iso(since) if since else None})
        newest: dict[tuple[str, str], AcceptedFix] = {}
        for r in rows:
            edited = r["kind"] == "edited"
            example = _from_row(
                AcceptedFix,
                r,
                target=r["final_code"] if edited else r["after_text"],
                edited=edited,
                weight=EDITED_WEIGHT if edited else ACCEPTED_WEIGHT,
                verified=bool(r["verified"]),
                recorded_at=_dt(r["decided_at"]),
            )
            key = (example.fix_id, example.target)
            newest.pop(key, None)  # re-insert so the order follows the newest decision
            newest[key] = example
        return list(newest.values())

    def route_counts(self) -> dict[str, dict[str, int]]:
        """How many offers of each route ended in each outcome (what the learner trains on)."""
        rows = self._rows(
            f"SELECT d.route AS route, o.kind AS kind, COUNT(*) AS n {_OUTCOME_JOIN} GROUP BY d.route, o.kind"
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
