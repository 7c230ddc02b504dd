"""Opening the store's SQLite file safely, and :class:`StoreBase`, the connection every part of the store shares.

Why a module of its own: this is the one place that decides how the file is created (0600, WAL,
busy timeout), how it is refused when it is not a store (before SQLite may write to it), how
storage errors become :class:`~learner.store.errors.StoreError`, and how a read or a write
transaction is taken. The record-specific parts of :class:`~learner.store.Store` are mixins
over :class:`StoreBase` and use only ``_write``, ``_rows``, ``_one`` and ``_now`` from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlite_utils import Database

from learner.config import Settings
from learner.store import migrations
from learner.store.errors import StoreBusy, StoreCorrupt, StoreError, StoreTooNew

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: Every store module logs under the package's name, as the store did when it was one module,
#: so log lines (``%(name)s`` in learner.log) and logging filters keep matching.
log = logging.getLogger("learner.store")

R = TypeVar("R", bound="DataclassInstance")

#: How long a write waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 5.0
SQLITE_HEADER = b"SQLite format 3\x00"
#: The pause between two tries of a step SQLite refuses at once instead of waiting (see ``_configure``).
_BUSY_RETRY_S = 0.02

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


# ----------------------------------------------------------------------------- column values


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


def _from_row(cls: type[R], row: Mapping[str, Any], **decoded: Any) -> R:
    """The record ``cls`` built from ``row``: each field from the column of its name, except those in
    ``decoded``, which the caller has already converted (JSON, ISO times, 0/1 flags, renamed columns).

    Why: record fields are named after their columns, so a mapper only has to state what is not
    a plain copy, and a field added to a record and its table cannot be forgotten in the mapper.
    """
    plain = {f.name: row[f.name] for f in fields(cls) if f.name not in decoded}
    return cls(**plain, **decoded)


# ----------------------------------------------------------------------------- opening the file


def _check_header(path: Path) -> None:
    """Refuse anything that is not an SQLite file *before* SQLite opens it, so it is never written."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise StoreCorrupt(path, "it is not a regular file")
    if info.st_size == 0:
        # SQLite treats an empty file as a new database; say so, since records may have been expected.
        log.warning("the feedback store %s was an empty file; starting a fresh store in it", path)
        return
    with path.open("rb") as fp:
        head = fp.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise StoreCorrupt(path, "it is not an SQLite database")


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
            mode = _configure(conn, path, time.monotonic() + busy_timeout_s)
        except BaseException:
            conn.close()
            raise
    finally:
        os.umask(old_umask)
    if str(mode).lower() != "wal":
        log.warning("feedback store %s is in %s mode, not WAL: concurrent writers will wait more", path, mode)
    _restrict(path)
    return conn


def _configure(conn: sqlite3.Connection, path: Path, deadline: float) -> str:
    """Check the file and set the connection's pragmas; return the journal mode in force.

    Two processes opening a fresh file both switch it to WAL, which needs an exclusive lock on a
    rollback-journal file. When both hold a shared lock, SQLite returns SQLITE_BUSY at once to
    one of them instead of calling the busy handler (it would deadlock), so the busy timeout does
    not cover this: the switch is retried here until ``deadline``.
    """
    while True:
        try:
            with _translated(path):
                # Reads the header and schema: a damaged file fails here, before anything is written.
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
                # WAL + NORMAL never corrupts; at worst a power cut loses the last few commits.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                # Deleted rows are overwritten with zeros, so forgotten code is not left in free pages.
                conn.execute("PRAGMA secure_delete=ON")
            return mode
        except StoreBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(_BUSY_RETRY_S)


# ----------------------------------------------------------------------------- the shared connection


class StoreBase:
    """One connection behind one lock, migrated on open; the plumbing the store's mixins write and read through."""

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
    def open(cls, settings: Settings, **kwargs: Any) -> Self:
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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
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

    def _truncate_wal(self) -> None:
        """Copy the write-ahead log into the file and truncate it: old page images (with text that was
        just deleted) leave the ``-wal`` file. Best effort: a reader mid-transaction keeps its frames."""
        with self._lock, _translated(self.path):
            busy, _, _ = self._open_conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("the store's write-ahead log could not be truncated now (another reader is active)")

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
