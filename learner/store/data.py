"""The user's data controls: export to and import from JSON Lines, ``forget`` and retention.

Why apart: these are the only operations that read or delete across every table, so the list
of tables and the order they must go in (parents first, for foreign keys) is kept here.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import IO

from learner.store.db import StoreBase, _iso, log
from learner.store.errors import InvalidRecord
from learner.store.learning import training_set_record
from learner.store.records import ForgetReport

#: Tables in export order (parents before children, so an import satisfies foreign keys).
EXPORT_TABLES = (
    "diagnostics",
    "suggestions",
    "offers",
    "outcomes",
    "training_sets",
    "adapter_versions",
    "learner_cycles",
    "eval_runs",
    "eval_results",
)
#: Tables holding the user's code or what they did with it; ``forget`` clears these.
_USER_TABLES = ("diagnostics", "suggestions", "offers", "outcomes", "training_sets")
EXPORT_FORMAT = "sleepy-coder-store"


class DataMixin(StoreBase):
    """Export, import, forget and retention over the whole store."""

    def export_jsonl(self, fp: IO[str]) -> int:
        """Write every record as JSON Lines (a header line, then ``{"table", "row"}``); return rows written.

        One read transaction, so the export is a consistent snapshot even while others write.
        """
        header = {"format": EXPORT_FORMAT, "schema_version": self.schema_version, "exported_at": self._now()}
        fp.write(json.dumps(header) + "\n")
        written = 0
        with self._lock:
            conn = self._open_conn()
            conn.execute("BEGIN")
            try:
                for table in EXPORT_TABLES:
                    for row in self._db[table].rows_where(order_by="rowid"):
                        fp.write(json.dumps({"table": table, "row": row}, ensure_ascii=False) + "\n")
                        written += 1
            finally:
                conn.rollback()
        return written

    def import_jsonl(self, fp: IO[str]) -> int:
        """Load an :meth:`export_jsonl` file into this (empty) store, keeping ids; return rows loaded."""
        header = json.loads(fp.readline() or "{}")
        if header.get("format") != EXPORT_FORMAT:
            raise InvalidRecord("not a sleepy-coder export (the first line has no matching 'format')")
        if header.get("schema_version") != self.schema_version:
            raise InvalidRecord(
                f"the export has schema version {header.get('schema_version')}, this store {self.schema_version}; "
                "import it with the sleepy-coder version that wrote it"
            )
        loaded = 0
        with self._write() as c:
            if any(c.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in EXPORT_TABLES):
                raise InvalidRecord(f"{self.path} already holds records; import only into an empty store")
            for number, line in enumerate(fp, start=2):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    table, row = entry["table"], entry["row"]
                except (ValueError, KeyError, TypeError) as e:
                    raise InvalidRecord(f"line {number} of the export is not a record: {e}") from e
                if table not in EXPORT_TABLES or not isinstance(row, dict) or not row:
                    raise InvalidRecord(f"line {number} of the export names an unknown table {table!r}")
                try:
                    self._db.table(table).insert(row)
                except sqlite3.DatabaseError as e:
                    raise InvalidRecord(f"line {number} of the export does not fit table {table!r}: {e}") from e
                loaded += 1
        return loaded

    def forget(self, before: datetime | None = None) -> ForgetReport:
        """Delete the user's records (diagnostics, fixes, outcomes, training sets) created before
        ``before``, or all of them; return what was deleted.

        Diagnostics count from when they were last seen. A training set built from any deleted
        fix is deleted too: the caller must delete the files listed in the report. Adapter
        versions, eval runs and learner cycles are kept (they hold no user code).
        """
        with self._write() as c:
            if before is None:
                doomed_sets = list(self._db.query("SELECT * FROM training_sets ORDER BY id"))
                counts = {
                    t: c.execute(f"DELETE FROM {t}").rowcount
                    for t in ("outcomes", "offers", "suggestions", "diagnostics")
                }
            else:
                cutoff = _iso(before)
                old_diags = "SELECT id FROM diagnostics WHERE last_seen_at < :cutoff"
                old_fixes = f"created_at < :cutoff OR diagnostic_id IN ({old_diags})"
                p = {"cutoff": cutoff}
                candidates = {r[0] for r in c.execute(f"SELECT fix_id FROM suggestions WHERE {old_fixes}", p)}
                old_offers = f"created_at < :cutoff OR suggestion_id IN (SELECT id FROM suggestions WHERE {old_fixes})"
                # Children first, so each count is what that table lost (not hidden in a cascade).
                counts = {
                    "outcomes": c.execute(
                        "DELETE FROM outcomes WHERE created_at < :cutoff"
                        f" OR offer_id IN (SELECT offer_id FROM offers WHERE {old_offers})",
                        p,
                    ).rowcount,
                    "offers": c.execute(f"DELETE FROM offers WHERE {old_offers}", p).rowcount,
                    "suggestions": c.execute(f"DELETE FROM suggestions WHERE {old_fixes}", p).rowcount,
                    "diagnostics": c.execute("DELETE FROM diagnostics WHERE last_seen_at < :cutoff", p).rowcount,
                }
                remaining = {r[0] for r in c.execute("SELECT DISTINCT fix_id FROM suggestions")}
                removed_fixes = candidates - remaining
                doomed_sets = [
                    r
                    for r in self._db.query("SELECT * FROM training_sets ORDER BY id")
                    if r["created_at"] < cutoff or removed_fixes.intersection(json.loads(r["source_fix_ids"]))
                ]
            sets = tuple(training_set_record(r) for r in doomed_sets)
            ids = [t.id for t in sets]
            c.execute(f"DELETE FROM training_sets WHERE id IN ({','.join('?' * len(ids))})", ids)
            counts["training_sets"] = len(sets)
        self._truncate_wal()
        log.info("forgot %s records before %s", sum(counts.values()), before or "now")
        return ForgetReport(counts=counts, training_sets=sets)

    def apply_retention(self, days: int) -> ForgetReport:
        """Forget records older than ``days`` days (0 or less keeps everything)."""
        if days <= 0:
            return ForgetReport(counts=dict.fromkeys(_USER_TABLES, 0))
        return self.forget(before=self._clock() - timedelta(days=days))
