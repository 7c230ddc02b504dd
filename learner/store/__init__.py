"""The local feedback store: one SQLite file (``settings.db_path``) shared by the editor's server,
the learner and the eval harness. This is the only module that knows table names; rows become
the frozen records defined here before they leave it.

Opening::

    store = Store.open(settings)            # or Store(path, clock=...); also a context manager
    # StoreCorrupt: the file is not a readable SQLite store. It is never modified or deleted;
    #   Store.quarantine(path) renames it to <name>.corrupt-<timestamp> so a fresh one can start.
    # StoreTooNew: the file was written by a newer sleepy-coder.

The file is created 0600 in WAL mode with a 5 s busy timeout, so several processes can read
and write it at once; every write is one short ``BEGIN IMMEDIATE`` transaction. Datetimes
passed in may be aware or naive (naive = local time); stored and returned ones are UTC.

Feedback (LSP server)::

    diag_id = store.record_diagnostic(diag, crate=root, route="type_mismatch", toolchain=..., edition="2021",
                                      context=enclosing_item_text)            # deduplicated
    fix = store.record_suggestion(diag_id, candidate, before_text=..., after_text=..., verified=True,
                                  verdict_reason="compiles")                  # -> FixRecord
    store.record_outcome(fix.fix_id, "accepted" | "rejected" | "edited" | "reverted" | "ignored",
                         final_code=None)                                     # idempotent per (fix_id, kind)
    store.heartbeat("server"); store.last_heartbeat("learner") -> datetime | None
    writer = AsyncWriter(); writer.submit(store.record_outcome, fix_id, "accepted"); writer.flush(); writer.close()

Learning::

    store.accepted_examples(route=None, since=None) -> list[TrainingExample]   # edited ones weigh most
    store.route_counts() -> {route: {kind: n}};  store.counts() -> {name: n}
    store.record_training_set(route, path, n_examples=, sha=, source_fix_ids=) -> TrainingSetRecord
    store.register_candidate(version, route=, path=, metrics=, parent_version=, base_model=) -> AdapterVersion
    store.set_adapter_metrics(version, metrics); store.promote(version); store.reject(version, reason)
    store.rollback(version) -> AdapterVersion | None;  store.adapters(route=, status=);  store.active_versions()
    store.start_cycle(state) -> id; store.update_cycle(id, state=, details=); store.finish_cycle(id, outcome)

Evaluation::

    run_id = store.start_eval_run(strategy, model=, adapter_versions=, project_version=, seeds=, attempts=)
    store.record_eval_result(run_id, case_id=, source=, route=, passed=, seed=, attempts_used=, ...)
    store.finish_eval_run(run_id); store.eval_run(run_id); store.eval_results(run_id); store.latest_runs()

Data controls::

    store.export_jsonl(fp) / store.import_jsonl(fp)    # import only into an empty store
    store.forget(before=None) -> ForgetReport           # .training_sets: delete their files too
    store.apply_retention(days) -> ForgetReport
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import queue
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

from sqlite_utils import Database

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.records import Edit, FixCandidate, RustDiagnostic
from learner.store import migrations

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a write waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 5.0
SQLITE_HEADER = b"SQLite format 3\x00"

OUTCOME_KINDS = ("accepted", "rejected", "edited", "reverted", "ignored")
ADAPTER_STATUSES = ("candidate", "active", "rejected", "retired")
HEARTBEAT_SOURCES = ("server", "learner")
#: Training weight of a fix the user accepted as offered / of the code they ended up writing.
ACCEPTED_WEIGHT = 1.0
EDITED_WEIGHT = 2.0

#: Tables in export order (parents before children, so an import satisfies foreign keys).
EXPORT_TABLES = (
    "diagnostics",
    "suggestions",
    "outcomes",
    "training_sets",
    "adapter_versions",
    "learner_cycles",
    "eval_runs",
    "eval_results",
)
#: Tables holding the user's code or what they did with it; ``forget`` clears these.
_USER_TABLES = ("diagnostics", "suggestions", "outcomes", "training_sets")
EXPORT_FORMAT = "sleepy-coder-store"

#: The newest suggestion row per fix_id: the same fix offered twice is one fix.
_LATEST_FIX = "latest_fix AS (SELECT * FROM suggestions WHERE id IN (SELECT MAX(id) FROM suggestions GROUP BY fix_id))"


# ----------------------------------------------------------------------------- errors


class StoreError(SleepyCoderError):
    """A store operation failed in a way the user or caller can act on."""


class StoreCorrupt(StoreError):
    """The file is not a readable SQLite store. It has not been touched."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"The feedback store {path} cannot be read ({reason}). It was left untouched. "
            f"To start a fresh store, move it aside: Store.quarantine() renames it to "
            f"{path.name}.corrupt-<timestamp> next to it (or rename it yourself); nothing is deleted."
        )


class StoreTooNew(StoreError):
    """The file's schema was written by a newer sleepy-coder."""


class StoreBusy(StoreError):
    """Another process held the write lock for longer than the busy timeout."""


class NotFound(StoreError, LookupError):
    """A referenced record (fix, diagnostic, run, adapter version) does not exist."""


class InvalidRecord(StoreError, ValueError):
    """The values given cannot be stored (unknown kind or status, missing required text)."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DiagnosticRecord:
    id: int
    created_at: datetime
    last_seen_at: datetime
    crate: str
    file: str
    code: str | None
    route: str
    level: str
    message: str
    rendered: str
    toolchain: str
    edition: str
    context: str
    diag_key: str


@dataclass(frozen=True)
class FixRecord:
    """A fix as it was offered for one diagnostic row."""

    id: int
    fix_id: str
    diagnostic_id: int
    source: str
    title: str
    model: str | None
    adapter_version: str | None
    prompt_hash: str | None
    latency_s: float
    attempt: int
    edits: tuple[Edit, ...]
    before_text: str
    after_text: str
    verified: bool
    verdict_reason: str
    created_at: datetime


@dataclass(frozen=True)
class OutcomeRecord:
    id: int
    fix_id: str
    kind: str
    final_code: str | None
    created_at: datetime


@dataclass(frozen=True)
class TrainingExample:
    """One supervised target: the diagnostic in its context, and the code the user kept."""

    fix_id: str
    route: str
    code: str | None
    message: str
    rendered: str
    file: str
    context: str
    before_text: str
    #: ``after_text`` of an accepted fix, or the user's own ``final_code`` when they edited it.
    target: str
    edited: bool
    weight: float
    source: str
    model: str | None
    adapter_version: str | None
    verified: bool
    toolchain: str
    edition: str
    recorded_at: datetime


@dataclass(frozen=True)
class EvalRun:
    id: int
    strategy: str
    model: str
    adapter_versions: dict[str, str]
    project_version: str
    seeds: tuple[int, ...]
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    meta: dict[str, Any]


@dataclass(frozen=True)
class EvalCaseResult:
    run_id: int
    case_id: str
    source: str
    route: str
    seed: int
    #: Fixed within the run's attempts (pass@k with k = the run's ``attempts``).
    passed: bool
    attempts_used: int
    reason: str
    exact_match: bool | None
    edit_size: int | None
    ref_edit_size: int | None
    latency_s: float
    candidate: str | None

    @property
    def pass_at_1(self) -> bool:
        return self.passed and self.attempts_used <= 1


@dataclass(frozen=True)
class AdapterVersion:
    version: str
    route: str
    path: str
    base_model: str | None
    created_at: datetime
    status: str
    status_changed_at: datetime
    metrics: dict[str, Any]
    parent_version: str | None


@dataclass(frozen=True)
class LearnerCycle:
    id: int
    started_at: datetime
    finished_at: datetime | None
    state: str
    outcome: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class TrainingSetRecord:
    id: int
    route: str
    path: str
    n_examples: int
    sha: str
    created_at: datetime
    source_fix_ids: tuple[str, ...]


@dataclass(frozen=True)
class ForgetReport:
    """Rows deleted per table, and the training sets whose files the caller should delete."""

    counts: dict[str, int]
    training_sets: tuple[TrainingSetRecord, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ----------------------------------------------------------------------------- helpers


def _iso(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so string order is time order inside SQL."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _opt_dt(text: str | None) -> datetime | None:
    return _dt(text) if text else None


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _opt_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _edits_json(edits: Iterable[Edit]) -> str:
    return json.dumps(
        [{"file": e.file, "byte_start": e.byte_start, "byte_end": e.byte_end, "new_text": e.new_text} for e in edits]
    )


def _edits(text: str) -> tuple[Edit, ...]:
    return tuple(Edit(d["file"], d["byte_start"], d["byte_end"], d["new_text"]) for d in json.loads(text))


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise InvalidRecord(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


def _check_header(path: Path) -> None:
    """Refuse anything that is not an SQLite file *before* SQLite opens it, so it is never written."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise StoreCorrupt(path, "it is not a regular file")
    if info.st_size == 0:
        return  # SQLite treats an empty file as a new database.
    with path.open("rb") as fp:
        head = fp.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise StoreCorrupt(path, "it is not an SQLite database")


#: SQLite result codes that describe the file or the disk, not a bug in a query.
_STORAGE_ERRORS = (
    "SQLITE_NOTADB",
    "SQLITE_CORRUPT",
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_READONLY",
    "SQLITE_PERM",
)


@contextlib.contextmanager
def _translated(path: Path) -> Iterator[None]:
    """Turn storage-level SQLite errors into :class:`StoreError` subclasses with a human message.

    Errors that mean a bug or a constraint (bad SQL, integrity) pass through unchanged.
    """
    try:
        yield
    except sqlite3.DatabaseError as e:
        name = getattr(e, "sqlite_errorname", None) or ""
        if not name.startswith(_STORAGE_ERRORS):
            raise
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            raise StoreCorrupt(path, str(e)) from e
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            raise StoreBusy(f"the feedback store {path} stayed locked by another process: {e}") from e
        raise StoreError(f"cannot use the feedback store {path}: {e} ({name})") from e


def _restrict(path: Path) -> None:
    """Make the store and its WAL sidecars private (0600) where we own them."""
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):
            if candidate.exists() and stat.S_IMODE(candidate.stat().st_mode) != 0o600:
                candidate.chmod(0o600)


def _connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open, verify and configure the connection; created files are 0600 from the first byte.

    The umask is process-wide, so it is only narrowed (never widened) and only for the
    moment SQLite may create the database and its -wal/-shm files.
    """
    old_umask = os.umask(0o077)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_header(path)
        with _translated(path):
            conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False)
        try:
            with _translated(path):
                # Reads the header and schema: a damaged file fails here, before anything is written.
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                # WAL + NORMAL never corrupts; at worst a power cut loses the last few commits.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
    finally:
        os.umask(old_umask)
    if str(mode).lower() != "wal":
        log.warning("feedback store %s is in %s mode, not WAL: concurrent writers will wait more", path, mode)
    _restrict(path)
    return conn


# ----------------------------------------------------------------------------- the store


class Store:
    """The feedback store. Thread-safe (one lock around one connection); see the module docstring."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], datetime] | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = _connect(self.path, busy_timeout_s)
        self._db = Database(self._conn, execute_plugins=False)
        try:
            with _translated(self.path):
                applied = migrations.migrate(self._db, self._now())
        except migrations.SchemaTooNew as e:
            self.close()
            raise StoreTooNew(
                f"The feedback store {self.path} was written by a newer sleepy-coder ({e}). "
                "Upgrade sleepy-coder, or point it at another data folder; the file was not changed."
            ) from e
        except migrations.SchemaError as e:
            self.close()
            raise StoreCorrupt(self.path, str(e)) from e
        except BaseException:
            self.close()
            raise
        if applied:
            log.info("feedback store %s: applied migrations %s", self.path, ", ".join(applied))

    @classmethod
    def open(cls, settings: Settings, **kwargs: Any) -> Store:
        return cls(settings.db_path, **kwargs)

    @staticmethod
    def quarantine(path: Path | str) -> Path:
        """Rename an unreadable store (and its -wal/-shm/-journal sidecars) aside; return the new path.

        Nothing is deleted: the user (or a bug report) can still recover data from it.
        """
        path = Path(path)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
            n += 1
        path.rename(target)
        for suffix in ("-wal", "-shm", "-journal"):
            sidecar = path.with_name(path.name + suffix)
            if sidecar.exists():
                sidecar.rename(target.with_name(target.name + suffix))
        log.warning("moved the unreadable feedback store %s to %s; a fresh store will be created", path, target)
        return target

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> str:
        return _iso(self._clock())

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the feedback store {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the lock is taken up front so it cannot deadlock later."""
        with self._lock, _translated(self.path):
            conn = self._open_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _rows(self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock, _translated(self.path):
            self._open_conn()
            return list(self._db.query(sql, params))

    def _one(self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> dict[str, Any] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    @property
    def journal_mode(self) -> str:
        row = self._one("PRAGMA journal_mode")
        return str(row["journal_mode"]) if row else ""

    @property
    def schema_version(self) -> int:
        with self._lock:
            return max(migrations.applied(self._db), default=0)

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
        return DiagnosticRecord(
            id=row["id"],
            created_at=_dt(row["created_at"]),
            last_seen_at=_dt(row["last_seen_at"]),
            crate=row["crate"],
            file=row["file"],
            code=row["code"],
            route=row["route"],
            level=row["level"],
            message=row["message"],
            rendered=row["rendered"],
            toolchain=row["toolchain"],
            edition=row["edition"],
            context=row["context"],
            diag_key=row["diag_key"],
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
        return self._fix(row)

    @staticmethod
    def _fix(row: Mapping[str, Any]) -> FixRecord:
        return FixRecord(
            id=row["id"],
            fix_id=row["fix_id"],
            diagnostic_id=row["diagnostic_id"],
            source=row["source"],
            title=row["title"],
            model=row["model"],
            adapter_version=row["adapter_version"],
            prompt_hash=row["prompt_hash"],
            latency_s=row["latency_s"],
            attempt=row["attempt"],
            edits=_edits(row["edits_json"]),
            before_text=row["before_text"],
            after_text=row["after_text"],
            verified=bool(row["verified"]),
            verdict_reason=row["verdict_reason"],
            created_at=_dt(row["created_at"]),
        )

    def fix(self, fix_id: str) -> FixRecord | None:
        """The latest offer of ``fix_id`` (the same fix can be offered for several diagnostic rows)."""
        row = self._one("SELECT * FROM suggestions WHERE fix_id = ? ORDER BY id DESC LIMIT 1", (fix_id,))
        return self._fix(row) if row else None

    def fixes_for(self, diagnostic_id: int) -> list[FixRecord]:
        return [
            self._fix(r)
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
            OutcomeRecord(r["id"], r["fix_id"], r["kind"], r["final_code"], _dt(r["created_at"]))
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

    def accepted_examples(self, route: str | None = None, since: datetime | None = None) -> list[TrainingExample]:
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
                TrainingExample(
                    fix_id=r["fix_id"],
                    route=r["route"],
                    code=r["code"],
                    message=r["message"],
                    rendered=r["rendered"],
                    file=r["file"],
                    context=r["context"],
                    before_text=r["before_text"],
                    target=r["edited_code"] if edited else r["after_text"],
                    edited=edited,
                    weight=EDITED_WEIGHT if edited else ACCEPTED_WEIGHT,
                    source=r["source"],
                    model=r["model"],
                    adapter_version=r["adapter_version"],
                    verified=bool(r["verified"]),
                    toolchain=r["toolchain"],
                    edition=r["edition"],
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

    # ------------------------------------------------------------------ eval runs

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

    @staticmethod
    def _run(row: Mapping[str, Any]) -> EvalRun:
        return EvalRun(
            id=row["id"],
            strategy=row["strategy"],
            model=row["model"],
            adapter_versions=json.loads(row["adapter_versions"]),
            project_version=row["project_version"],
            seeds=tuple(json.loads(row["seeds"])),
            attempts=row["attempts"],
            started_at=_dt(row["started_at"]),
            finished_at=_opt_dt(row["finished_at"]),
            meta=json.loads(row["meta"]),
        )

    def eval_run(self, run_id: int) -> EvalRun:
        row = self._one("SELECT * FROM eval_runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFound(f"no eval run with id {run_id}")
        return self._run(row)

    def eval_results(self, run_id: int) -> list[EvalCaseResult]:
        rows = self._rows("SELECT * FROM eval_results WHERE run_id = ? ORDER BY case_id, seed, source", (run_id,))
        return [
            EvalCaseResult(
                run_id=r["run_id"],
                case_id=r["case_id"],
                source=r["source"],
                route=r["route"],
                seed=r["seed"],
                passed=bool(r["passed"]),
                attempts_used=r["attempts_used"],
                reason=r["reason"],
                exact_match=_opt_bool(r["exact_match"]),
                edit_size=r["edit_size"],
                ref_edit_size=r["ref_edit_size"],
                latency_s=r["latency_s"],
                candidate=r["candidate"],
            )
            for r in rows
        ]

    def latest_runs(self, strategy: str | None = None, *, limit: int = 10, finished_only: bool = True) -> list[EvalRun]:
        """Newest runs first, optionally of one strategy; unfinished (crashed) runs are skipped by default."""
        rows = self._rows(
            "SELECT * FROM eval_runs WHERE (:strategy IS NULL OR strategy = :strategy)"
            " AND (:all OR finished_at IS NOT NULL) ORDER BY started_at DESC, id DESC LIMIT :limit",
            {"strategy": strategy, "all": int(not finished_only), "limit": limit},
        )
        return [self._run(r) for r in rows]

    # ------------------------------------------------------------------ adapter registry

    @staticmethod
    def _adapter(row: Mapping[str, Any]) -> AdapterVersion:
        return AdapterVersion(
            version=row["version"],
            route=row["route"],
            path=row["path"],
            base_model=row["base_model"],
            created_at=_dt(row["created_at"]),
            status=row["status"],
            status_changed_at=_dt(row["status_changed_at"]),
            metrics=json.loads(row["metrics"]),
            parent_version=row["parent_version"],
        )

    def adapter(self, version: str) -> AdapterVersion:
        row = self._one("SELECT * FROM adapter_versions WHERE version = ?", (version,))
        if row is None:
            raise NotFound(f"no adapter version {version!r}")
        return self._adapter(row)

    def adapters(self, route: str | None = None, status: str | None = None) -> list[AdapterVersion]:
        """Registered versions, newest first."""
        rows = self._rows(
            "SELECT * FROM adapter_versions WHERE (:route IS NULL OR route = :route)"
            " AND (:status IS NULL OR status = :status) ORDER BY created_at DESC, version DESC",
            {"route": route, "status": status},
        )
        return [self._adapter(r) for r in rows]

    def active_versions(self) -> dict[str, AdapterVersion]:
        """The adapter in use for each route (routes without one use the base model)."""
        return {a.route: a for a in self.adapters(status="active")}

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

    def promote(self, version: str) -> AdapterVersion:
        """Make ``version`` the active adapter of its route; the previous active one becomes retired.

        One transaction: readers see either the old or the new active adapter, never none or two.
        A retired version can be promoted again (that is how to roll back to a chosen version).
        """
        with self._write() as c:
            route, status = self._status_of(c, version)
            if status == "rejected":
                raise InvalidRecord(f"adapter {version!r} was rejected and cannot be promoted")
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

    # ------------------------------------------------------------------ learner cycles and training sets

    @staticmethod
    def _cycle(row: Mapping[str, Any]) -> LearnerCycle:
        return LearnerCycle(
            id=row["id"],
            started_at=_dt(row["started_at"]),
            finished_at=_opt_dt(row["finished_at"]),
            state=row["state"],
            outcome=row["outcome"],
            details=json.loads(row["details"]),
        )

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
        return [self._cycle(r) for r in rows]

    @staticmethod
    def _training_set(row: Mapping[str, Any]) -> TrainingSetRecord:
        return TrainingSetRecord(
            id=row["id"],
            route=row["route"],
            path=row["path"],
            n_examples=row["n_examples"],
            sha=row["sha"],
            created_at=_dt(row["created_at"]),
            source_fix_ids=tuple(json.loads(row["source_fix_ids"])),
        )

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
        return [self._training_set(r) for r in rows]

    # ------------------------------------------------------------------ data controls

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
                counts = {t: c.execute(f"DELETE FROM {t}").rowcount for t in ("outcomes", "suggestions", "diagnostics")}
            else:
                cutoff = _iso(before)
                old_diags = "SELECT id FROM diagnostics WHERE last_seen_at < :cutoff"
                old_fixes = f"created_at < :cutoff OR diagnostic_id IN ({old_diags})"
                p = {"cutoff": cutoff}
                candidates = {r[0] for r in c.execute(f"SELECT fix_id FROM suggestions WHERE {old_fixes}", p)}
                counts = {
                    "suggestions": c.execute(f"DELETE FROM suggestions WHERE {old_fixes}", p).rowcount,
                    "diagnostics": c.execute("DELETE FROM diagnostics WHERE last_seen_at < :cutoff", p).rowcount,
                    # Outcomes go when old, or when no offer of their fix is left.
                    "outcomes": c.execute(
                        "DELETE FROM outcomes WHERE created_at < :cutoff"
                        " OR fix_id NOT IN (SELECT fix_id FROM suggestions)",
                        p,
                    ).rowcount,
                }
                remaining = {r[0] for r in c.execute("SELECT DISTINCT fix_id FROM suggestions")}
                removed_fixes = candidates - remaining
                doomed_sets = [
                    r
                    for r in self._db.query("SELECT * FROM training_sets ORDER BY id")
                    if r["created_at"] < cutoff or removed_fixes.intersection(json.loads(r["source_fix_ids"]))
                ]
            sets = tuple(self._training_set(r) for r in doomed_sets)
            ids = [t.id for t in sets]
            c.execute(f"DELETE FROM training_sets WHERE id IN ({','.join('?' * len(ids))})", ids)
            counts["training_sets"] = len(sets)
        log.info("forgot %s records before %s", sum(counts.values()), before or "now")
        return ForgetReport(counts=counts, training_sets=sets)

    def apply_retention(self, days: int) -> ForgetReport:
        """Forget records older than ``days`` days (0 or less keeps everything)."""
        if days <= 0:
            return ForgetReport(counts=dict.fromkeys(_USER_TABLES, 0))
        return self.forget(before=self._clock() - timedelta(days=days))


# ----------------------------------------------------------------------------- background writes


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future[Any] = field(default_factory=Future)


class AsyncWriter:
    """Runs store writes on one background thread, in submission order.

    Why: the LSP server must answer the editor at once; a write that waits on the disk or on
    the learner's transaction (up to the busy timeout) must not stall it. Failures are logged
    and set on the returned future; they never kill the thread. Call :meth:`close` (or use it
    as a context manager) before closing the store; at interpreter exit it is closed for you,
    so queued writes are not dropped with the daemon thread.
    """

    def __init__(self, name: str = "sleepy-coder-store-writer") -> None:
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        job = _Job(fn, args, kwargs)
        with self._guard:
            if self._closed:
                raise StoreError("the background store writer is closed")
            self._queue.put(job)
        return job.future

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far has been written (or failed)."""
        self.submit(lambda: None).result(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Finish the queued writes, then stop the thread. Idempotent."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        atexit.unregister(self.close)
        self._thread.join(timeout)

    def __enter__(self) -> AsyncWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(job.fn(*job.args, **job.kwargs))
            except BaseException as e:
                log.warning("background store write %s failed: %s", getattr(job.fn, "__name__", job.fn), e)
                job.future.set_exception(e)
