"""Named, ordered schema migrations for the feedback store (see ``learner/store/``).

Why migrations instead of "create if missing": the store lives on the user's machine for
months and outlives many versions of this code; each schema change is appended here as a
new function and applied exactly once, in order, to every existing file. Never edit or
reorder a migration that has shipped: add a new one.

Applied migrations are recorded in ``schema_migrations`` (version, name, applied_at). A file
that records a version this code does not know was written by a newer sleepy-coder:
:func:`migrate` refuses it (:class:`SchemaTooNew`) instead of guessing.

Migrations run in one ``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh file
at the same time cannot both apply them: the second waits for the write lock, then sees that
nothing is left to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from sqlite_utils import Database

from learner.errors import SleepyCoderError

MIGRATIONS_TABLE = "schema_migrations"


class SchemaError(SleepyCoderError):
    """The file's recorded schema does not match what this code knows."""


class SchemaTooNew(SchemaError):
    """The file was migrated by a newer version of sleepy-coder."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(f"schema version {found} is newer than the newest this code knows ({known})")
        self.found = found
        self.known = known


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Database], None]


MIGRATIONS: list[Migration] = []


def migration(fn: Callable[[Database], None]) -> Callable[[Database], None]:
    """Register ``fn`` as the next migration; its function name is its permanent name."""
    MIGRATIONS.append(Migration(len(MIGRATIONS) + 1, fn.__name__, fn))
    return fn


def _run(db: Database, statements: str) -> None:
    """Run ``;``-separated DDL inside the caller's transaction.

    ``executescript`` would COMMIT first and break the all-or-nothing guarantee, so each
    statement goes through ``execute`` (which joins the open transaction).
    """
    for statement in statements.split(";"):
        if statement.strip():
            db.execute(statement)


@migration
def feedback_tables(db: Database) -> None:
    """Diagnostics seen, fixes offered for them, what the user did with each, liveness."""
    _run(
        db,
        """
        CREATE TABLE diagnostics (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            crate TEXT NOT NULL,
            file TEXT NOT NULL,
            code TEXT,
            route TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            rendered TEXT NOT NULL DEFAULT '',
            toolchain TEXT NOT NULL DEFAULT '',
            edition TEXT NOT NULL DEFAULT '',
            context TEXT NOT NULL DEFAULT '',
            context_sha TEXT NOT NULL,
            diag_key TEXT NOT NULL,
            UNIQUE (crate, file, diag_key, context_sha)
        );
        CREATE INDEX diagnostics_last_seen ON diagnostics (last_seen_at);
        CREATE INDEX diagnostics_route ON diagnostics (route);

        CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY,
            fix_id TEXT NOT NULL,
            diagnostic_id INTEGER NOT NULL REFERENCES diagnostics (id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            title TEXT NOT NULL,
            model TEXT,
            adapter_version TEXT,
            prompt_hash TEXT,
            latency_s REAL NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 1,
            edits_json TEXT NOT NULL,
            before_text TEXT NOT NULL,
            after_text TEXT NOT NULL,
            verified INTEGER NOT NULL CHECK (verified IN (0, 1)),
            verdict_reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (diagnostic_id, fix_id)
        );
        CREATE INDEX suggestions_fix_id ON suggestions (fix_id);
        CREATE INDEX suggestions_created ON suggestions (created_at);

        CREATE TABLE outcomes (
            id INTEGER PRIMARY KEY,
            fix_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('accepted', 'rejected', 'edited', 'reverted', 'ignored')),
            final_code TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (fix_id, kind)
        );
        CREATE INDEX outcomes_created ON outcomes (created_at);

        CREATE TABLE heartbeats (
            source TEXT PRIMARY KEY,
            at TEXT NOT NULL
        )
        """,
    )


@migration
def eval_tables(db: Database) -> None:
    """Benchmark runs and their per-case results, so strategies can be compared over time."""
    _run(
        db,
        """
        CREATE TABLE eval_runs (
            id INTEGER PRIMARY KEY,
            strategy TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            adapter_versions TEXT NOT NULL DEFAULT '{}',
            project_version TEXT NOT NULL DEFAULT '',
            seeds TEXT NOT NULL DEFAULT '[]',
            attempts INTEGER NOT NULL DEFAULT 1,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            meta TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX eval_runs_strategy ON eval_runs (strategy, started_at);

        CREATE TABLE eval_results (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES eval_runs (id) ON DELETE CASCADE,
            case_id TEXT NOT NULL,
            source TEXT NOT NULL,
            route TEXT NOT NULL,
            seed INTEGER NOT NULL DEFAULT 0,
            passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
            attempts_used INTEGER NOT NULL DEFAULT 1,
            reason TEXT NOT NULL DEFAULT '',
            exact_match INTEGER CHECK (exact_match IN (0, 1)),
            edit_size INTEGER,
            ref_edit_size INTEGER,
            latency_s REAL NOT NULL DEFAULT 0,
            candidate TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (run_id, case_id, seed, source)
        )
        """,
    )


@migration
def learner_tables(db: Database) -> None:
    """Adapter registry (one active per route, enforced by a partial unique index), cycles, sets."""
    _run(
        db,
        """
        CREATE TABLE adapter_versions (
            version TEXT PRIMARY KEY,
            route TEXT NOT NULL,
            path TEXT NOT NULL,
            base_model TEXT,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'rejected', 'retired')),
            status_changed_at TEXT NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{}',
            parent_version TEXT REFERENCES adapter_versions (version) ON DELETE SET NULL
        );
        CREATE UNIQUE INDEX adapter_versions_one_active ON adapter_versions (route) WHERE status = 'active';

        CREATE TABLE learner_cycles (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            state TEXT NOT NULL,
            outcome TEXT,
            details TEXT NOT NULL DEFAULT '{}'
        );

        CREATE TABLE training_sets (
            id INTEGER PRIMARY KEY,
            route TEXT NOT NULL,
            path TEXT NOT NULL,
            n_examples INTEGER NOT NULL,
            sha TEXT NOT NULL,
            created_at TEXT NOT NULL,
            source_fix_ids TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX training_sets_created ON training_sets (created_at)
        """,
    )


@migration
def offer_events(db: Database) -> None:
    """One offer, one row: each time a fix is shown it is an offer with its own id, and an outcome
    belongs to an offer (one row per offer, its latest decision), not to the fix's content hash.

    Why: keyed by ``(fix_id, kind)``, the same fix accepted in a second crate added no row and one
    fix could be both rejected and accepted. Existing rows are kept: each old suggestion becomes
    one offer (``legacy-<id>``), and each fix's old outcomes collapse onto its newest offer, the
    strongest kind winning (rejected/reverted over edited over accepted over ignored).
    """
    _run(
        db,
        """
        CREATE TABLE offers (
            id INTEGER PRIMARY KEY,
            offer_id TEXT NOT NULL UNIQUE,
            suggestion_id INTEGER NOT NULL REFERENCES suggestions (id) ON DELETE CASCADE,
            document_uri TEXT NOT NULL DEFAULT '',
            document_version INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX offers_suggestion ON offers (suggestion_id);
        CREATE INDEX offers_created ON offers (created_at);
        INSERT INTO offers (offer_id, suggestion_id, created_at)
            SELECT 'legacy-' || id, id, created_at FROM suggestions ORDER BY id;

        CREATE TABLE offer_outcomes (
            id INTEGER PRIMARY KEY,
            offer_id TEXT NOT NULL UNIQUE REFERENCES offers (offer_id) ON DELETE CASCADE,
            fix_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('accepted', 'rejected', 'edited', 'reverted', 'ignored')),
            final_code TEXT,
            final_ranges TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        INSERT INTO offer_outcomes (offer_id, fix_id, kind, final_code, created_at, updated_at)
            SELECT 'legacy-' || (SELECT MAX(s.id) FROM suggestions s WHERE s.fix_id = o.fix_id), o.fix_id, o.kind,
                   o.final_code, o.created_at, o.created_at
            FROM outcomes o
            WHERE o.id = (
                SELECT p.id FROM outcomes p WHERE p.fix_id = o.fix_id
                ORDER BY CASE p.kind WHEN 'rejected' THEN 0 WHEN 'reverted' THEN 0 WHEN 'edited' THEN 1
                                     WHEN 'accepted' THEN 2 ELSE 3 END, p.id DESC
                LIMIT 1)
              AND EXISTS (SELECT 1 FROM suggestions s WHERE s.fix_id = o.fix_id);
        DROP TABLE outcomes;
        ALTER TABLE offer_outcomes RENAME TO outcomes;
        CREATE INDEX outcomes_created ON outcomes (created_at);
        CREATE INDEX outcomes_fix ON outcomes (fix_id)
        """,
    )


LATEST_VERSION = len(MIGRATIONS)


def applied(db: Database) -> dict[int, str]:
    """Versions (and names) recorded in the file; empty for a fresh file."""
    if MIGRATIONS_TABLE not in db.table_names():
        return {}
    return {int(r["version"]): str(r["name"]) for r in db.query(f"SELECT version, name FROM {MIGRATIONS_TABLE}")}


def _check(done: dict[int, str]) -> None:
    newest = max(done, default=0)
    if newest > LATEST_VERSION:
        raise SchemaTooNew(newest, LATEST_VERSION)
    for m in MIGRATIONS:
        if m.version in done and done[m.version] != m.name:
            raise SchemaError(
                f"migration {m.version} is recorded as {done[m.version]!r} but this code calls it {m.name!r}"
            )


def migrate(db: Database, now_iso: str) -> list[str]:
    """Apply every pending migration in order; return the names applied (empty if up to date).

    Raises :class:`SchemaTooNew` without changing anything if the file is newer than this code.
    The connection must be in Python's default (legacy) transaction mode with no open
    transaction.
    """
    done = applied(db)
    _check(done)
    if all(m.version in done for m in MIGRATIONS):
        return []  # Fast path: no write lock taken on every open.
    conn: sqlite3.Connection = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
        )
        done = applied(db)  # Re-read under the lock: another process may have migrated meanwhile.
        _check(done)
        names: list[str] = []
        for m in MIGRATIONS:
            if m.version in done:
                continue
            m.apply(db)
            db.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
                (m.version, m.name, now_iso),
            )
            names.append(m.name)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return names
