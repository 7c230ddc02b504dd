"""The feedback store against real SQLite files: safety of the file, the records, and concurrent use."""

from __future__ import annotations

import io
import multiprocessing
import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from learner.config import Settings
from learner.records import Edit, FixCandidate, RustDiagnostic, Span
from learner.store import (
    EDITED_WEIGHT,
    AsyncWriter,
    InvalidRecord,
    KeptRange,
    NotFound,
    OfferRecord,
    Store,
    StoreCorrupt,
    StoreTooNew,
    migrations,
)

CRATE = "/home/user/project"
ROUTE = "type_mismatch"


class Clock:
    """A settable clock, so records can be made "old" without sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_diag(n: int) -> RustDiagnostic:
    span = Span("src/main.rs", 10 + n, 12 + n, 1, 1, 5, 7, is_primary=True)
    return RustDiagnostic(
        level="error", message=f"mismatched types {n}", code="E0308", rendered="error[E0308]", spans=(span,)
    )


def offer(store: Store, n: int, route: str = ROUTE) -> OfferRecord:
    """Record diagnostic ``n`` and one verified model fix for it, as the server would."""
    diag_id = store.record_diagnostic(
        make_diag(n), crate=CRATE, route=route, toolchain="rustc 1.95.0", edition="2021", context=f"fn f{n}() {{ a }}"
    )
    candidate = FixCandidate(
        source="model",
        title=f"fix {n}",
        edits=(Edit("src/main.rs", 10 + n, 12 + n, f"x{n}"),),
        route=route,
        model="tiny",
        adapter_version="v0",
        prompt_hash="abc",
        latency_s=0.5,
    )
    return store.record_offer(
        diag_id,
        candidate,
        before_text=f"fn f{n}() {{ a }}",
        after_text=f"fn f{n}() {{ x{n} }}",
        verified=True,
        verdict_reason="compiles",
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "data" / "store.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as s:
        yield s


# ----------------------------------------------------------------------------- the file


def test_new_store_is_private_wal_file_with_busy_timeout(store: Store, db_path: Path) -> None:
    offer(store, 1)  # A write, so the -wal and -shm files exist.
    for name in (db_path.name, db_path.name + "-wal", db_path.name + "-shm"):
        assert stat.S_IMODE((db_path.parent / name).stat().st_mode) == 0o600, name
    assert store.journal_mode == "wal"
    assert store._one("PRAGMA busy_timeout") == {"timeout": 5000}
    assert store._one("PRAGMA foreign_keys") == {"foreign_keys": 1}


def test_store_opens_at_settings_db_path(settings: Settings) -> None:
    with Store.open(settings) as s:
        assert s.path == settings.db_path
    assert settings.db_path.exists()


def test_non_sqlite_file_raises_store_corrupt_and_is_left_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    junk = b"this is my notes file, not a database\n" * 100
    db_path.write_bytes(junk)
    with pytest.raises(StoreCorrupt) as info:
        Store(db_path)
    assert str(db_path) in str(info.value)
    assert "quarantine" in str(info.value)
    assert db_path.read_bytes() == junk
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def test_damaged_sqlite_file_raises_store_corrupt_and_is_left_untouched(db_path: Path) -> None:
    with Store(db_path) as s:
        offer(s, 1)
    data = bytearray(db_path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # The schema page, after the valid 100-byte header.
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt):
        Store(db_path)
    assert db_path.read_bytes() == bytes(data)


def test_quarantine_moves_corrupt_file_aside_so_a_fresh_store_starts(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"garbage")
    with pytest.raises(StoreCorrupt):
        Store(db_path)
    moved = Store.quarantine(db_path)
    assert moved.name.startswith(db_path.name + ".corrupt-")
    assert moved.read_bytes() == b"garbage"
    with Store(db_path) as fresh:
        assert fresh.counts()["outcomes"] == 0
    assert moved.read_bytes() == b"garbage"


def test_store_written_by_newer_version_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', 'x')",
            (migrations.LATEST_VERSION + 1,),
        )
    conn.close()
    with pytest.raises(StoreTooNew, match="newer sleepy-coder"):
        Store(db_path)


def test_reopening_applies_each_migration_once_and_keeps_data(db_path: Path) -> None:
    with Store(db_path) as s:
        fix = offer(s, 1).fix
    with Store(db_path) as s:
        assert s.schema_version == migrations.LATEST_VERSION
        assert s.fix(fix.fix_id) == fix
        rows = s._rows("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in migrations.MIGRATIONS]


def _store_at_version(db_path: Path, version: int) -> None:
    """A file as an older sleepy-coder left it: only the first ``version`` migrations applied."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TABLE schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
    )
    for m in migrations.MIGRATIONS[:version]:
        m.apply(Database(conn))
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2025-01-01T00:00:00+00:00')", (m.version, m.name))
    conn.commit()
    conn.close()


def test_opening_an_older_store_applies_only_the_pending_migrations(db_path: Path) -> None:
    _store_at_version(db_path, 1)
    with Store(db_path) as s:
        assert s.schema_version == migrations.LATEST_VERSION
        fix = offer(s, 1).fix
        assert s.fix(fix.fix_id) == fix
        assert s.start_eval_run("base") == 1
        rows = s._rows("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert rows[0]["applied_at"] == "2025-01-01T00:00:00+00:00"  # migration 1 was not applied again
    assert [r["version"] for r in rows] == [m.version for m in migrations.MIGRATIONS]


def test_offer_migration_turns_old_fix_outcomes_into_one_outcome_per_offer(db_path: Path) -> None:
    """A store from before offers: outcomes keyed by (fix_id, kind) collapse onto the fix's newest
    offer, the strongest kind winning, and the accepted fixes it trains on stay the same."""
    _store_at_version(db_path, 3)
    conn = sqlite3.connect(db_path)
    now = "2025-01-01T00:00:00+00:00"
    conn.execute(
        "INSERT INTO diagnostics (id, created_at, last_seen_at, crate, file, code, route, level, message, context_sha,"
        " diag_key) VALUES (1, ?, ?, '/c', 'src/main.rs', 'E0308', 'type_mismatch', 'error', 'm', 'x', 'k')",
        (now, now),
    )
    for n, fix_id in enumerate(["fa", "fb"], start=1):
        conn.execute(
            "INSERT INTO suggestions (id, fix_id, diagnostic_id, source, title, edits_json, before_text, after_text,"
            " verified, created_at) VALUES (?, ?, 1, 'rustc', 't', '[]', 'b', ?, 1, ?)",
            (n, fix_id, f"after {fix_id}", now),
        )
    rows = [("fa", "accepted", None), ("fa", "edited", "mine"), ("fb", "accepted", None), ("fb", "rejected", None)]
    conn.executemany(
        "INSERT INTO outcomes (fix_id, kind, final_code, created_at) VALUES (?, ?, ?, ?)", [(*r, now) for r in rows]
    )
    conn.commit()
    conn.close()
    with Store(db_path) as s:
        assert s.schema_version == migrations.LATEST_VERSION
        assert {(o.fix_id, o.kind) for o in s.outcomes()} == {("fa", "edited"), ("fb", "rejected")}
        [example] = s.accepted_fixes()
        assert (example.fix_id, example.target, example.edited) == ("fa", "mine", True)
        assert [o.offer_id for o in s.offers("fa")] == ["legacy-1"]


# ----------------------------------------------------------------------------- feedback


def test_same_diagnostic_in_same_code_is_one_row(store: Store) -> None:
    first = store.record_diagnostic(make_diag(1), crate=CRATE, route=ROUTE, context="fn a() {}")
    again = store.record_diagnostic(make_diag(1), crate=CRATE, route=ROUTE, context="fn a() {}")
    changed = store.record_diagnostic(make_diag(1), crate=CRATE, route=ROUTE, context="fn a() { 1 }")
    assert first == again != changed
    record = store.diagnostic(first)
    assert (record.code, record.file, record.context) == ("E0308", "src/main.rs", "fn a() {}")


def test_offered_fix_round_trips_as_record(store: Store) -> None:
    shown = offer(store, 3)
    fix = shown.fix
    assert store.offer(shown.offer_id) == shown and store.fix(fix.fix_id) == fix
    assert fix.edits == (Edit("src/main.rs", 13, 15, "x3"),)
    assert (fix.source, fix.verified, fix.verdict_reason, fix.latency_s) == ("model", True, "compiles", 0.5)
    assert store.fixes_for(fix.diagnostic_id) == [fix]


def test_fix_for_unknown_diagnostic_is_refused(store: Store) -> None:
    candidate = FixCandidate(source="rustc", title="t", edits=(), route=ROUTE)
    with pytest.raises(NotFound):
        store.record_suggestion(999, candidate, before_text="", after_text="", verified=False)


def test_each_offer_keeps_one_outcome_its_latest_decision(store: Store) -> None:
    shown = offer(store, 1)
    assert store.record_outcome(shown.offer_id, "accepted") is True
    assert store.record_outcome(shown.offer_id, "accepted") is False  # a duplicate editor event
    ranges = (KeptRange("src/main.rs", "1"),)
    assert store.record_outcome(shown.offer_id, "edited", "fn a() { 1 }", ranges) is True
    assert store.record_outcome(shown.offer_id, "accepted") is False  # never undoes what watching found
    assert store.record_outcome(shown.offer_id, "ignored") is False  # the ignore timer never overrides
    [outcome] = store.outcomes(shown.fix_id)
    assert (outcome.offer_id, outcome.kind, outcome.final_code, outcome.final_ranges) == (
        shown.offer_id,
        "edited",
        "fn a() { 1 }",
        ranges,
    )
    assert store.outcome(shown.offer_id) == outcome


def test_the_same_fix_offered_again_is_a_separate_countable_event(store: Store) -> None:
    first = offer(store, 1)
    second = store.record_offer_of(first.fix, document_uri="file:///other/src/main.rs", document_version=7)
    assert second.fix_id == first.fix_id and second.offer_id != first.offer_id
    assert (second.document_uri, second.document_version) == ("file:///other/src/main.rs", 7)
    store.record_outcome(first.offer_id, "rejected")
    store.record_outcome(second.offer_id, "accepted")
    assert sorted(o.kind for o in store.outcomes(first.fix_id)) == ["accepted", "rejected"]
    [example] = store.accepted_fixes()  # rejected once, accepted once: the acceptance still counts
    assert (example.fix_id, example.offer_id) == (first.fix_id, second.offer_id)
    assert store.route_counts() == {ROUTE: {"accepted": 1, "rejected": 1}}


def test_accepting_the_same_fix_twice_trains_on_it_once(store: Store) -> None:
    first = offer(store, 1)
    again = store.record_offer_of(first.fix)
    store.record_outcome(first.offer_id, "accepted")
    store.record_outcome(again.offer_id, "accepted")
    assert store.counts()["accepted"] == 2
    assert [e.offer_id for e in store.accepted_fixes()] == [again.offer_id]


def test_bad_outcomes_are_refused_with_a_reason(store: Store) -> None:
    shown = offer(store, 1)
    with pytest.raises(NotFound, match="no offer"):
        store.record_outcome("nope", "accepted")
    with pytest.raises(InvalidRecord, match="unknown outcome kind"):
        store.record_outcome(shown.offer_id, "loved")
    with pytest.raises(InvalidRecord, match="final code"):
        store.record_outcome(shown.offer_id, "edited")
    assert store.outcomes() == []


def test_accepted_examples_never_include_rejected_fixes_and_prefer_edited_code(store: Store) -> None:
    fixes = [offer(store, n) for n in range(7)]
    store.record_outcome(fixes[0].offer_id, "accepted")
    store.record_outcome(fixes[1].offer_id, "rejected")
    store.record_outcome(fixes[2].offer_id, "accepted")
    store.record_outcome(fixes[2].offer_id, "reverted")
    store.record_outcome(fixes[3].offer_id, "ignored")
    store.record_outcome(fixes[4].offer_id, "edited", "fn f4() { mine }")
    store.record_outcome(fixes[5].offer_id, "accepted")
    store.record_outcome(fixes[5].offer_id, "edited", "fn f5() { mine }")
    examples = {e.fix_id: e for e in store.accepted_fixes()}
    assert set(examples) == {fixes[0].fix_id, fixes[4].fix_id, fixes[5].fix_id}
    assert examples[fixes[0].fix_id].target == "fn f0() { x0 }"
    assert not examples[fixes[0].fix_id].edited
    for n in (4, 5):
        example = examples[fixes[n].fix_id]
        assert (example.target, example.edited, example.weight) == (f"fn f{n}() {{ mine }}", True, EDITED_WEIGHT)
        assert example.weight > examples[fixes[0].fix_id].weight
        assert (example.route, example.code, example.context) == (ROUTE, "E0308", f"fn f{n}() {{ a }}")


def test_accepted_examples_filter_by_route_and_time(db_path: Path) -> None:
    clock = Clock(datetime(2025, 1, 1, tzinfo=UTC))
    with Store(db_path, clock=clock) as s:
        old = offer(s, 1)
        s.record_outcome(old.offer_id, "accepted")
        clock.advance(days=2)
        new = offer(s, 2, route="borrow")
        s.record_outcome(new.offer_id, "accepted")
        assert [e.fix_id for e in s.accepted_fixes(route="borrow")] == [new.fix_id]
        assert [e.fix_id for e in s.accepted_fixes(since=clock.now - timedelta(days=1))] == [new.fix_id]
        assert [e.fix_id for e in s.accepted_fixes()] == [old.fix_id, new.fix_id]
        assert s.route_counts() == {ROUTE: {"accepted": 1}, "borrow": {"accepted": 1}}


def test_heartbeats_report_the_latest_beat(db_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 1, 12, tzinfo=UTC))
    with Store(db_path, clock=clock) as s:
        assert s.last_heartbeat("server") is None
        s.heartbeat("server")
        clock.advance(minutes=5)
        s.heartbeat("server")
        assert s.last_heartbeat("server") == clock.now
        assert s.last_heartbeat("learner") is None
        with pytest.raises(InvalidRecord):
            s.heartbeat("editor")


# ----------------------------------------------------------------------------- learner and eval


def test_promote_keeps_exactly_one_active_adapter_per_route(store: Store) -> None:
    store.register_candidate("a1", route=ROUTE, path="/adapters/a1")
    store.register_candidate("a2", route=ROUTE, path="/adapters/a2", parent_version="a1", metrics={"loss": 0.5})
    store.register_candidate("b1", route="borrow", path="/adapters/b1")
    store.promote("a1")
    store.promote("b1")
    assert store.promote("a2").status == "active"
    assert store.adapter("a1").status == "retired"
    assert {r: a.version for r, a in store.active_versions().items()} == {ROUTE: "a2", "borrow": "b1"}
    assert store.adapter("a2").metrics == {"loss": 0.5}
    # The schema itself refuses a second active adapter for a route.
    with pytest.raises(sqlite3.IntegrityError):
        store._db.execute("UPDATE adapter_versions SET status = 'active' WHERE version = 'a1'")


def test_rollback_rejects_the_active_adapter_and_restores_its_parent(store: Store) -> None:
    store.register_candidate("a1", route=ROUTE, path="/adapters/a1")
    store.register_candidate("a2", route=ROUTE, path="/adapters/a2", parent_version="a1")
    store.promote("a1")
    store.promote("a2")
    restored = store.rollback("a2")
    assert restored is not None and restored.version == "a1" and restored.status == "active"
    assert store.adapter("a2").status == "rejected"
    with pytest.raises(InvalidRecord, match="rejected"):
        store.promote("a2")
    assert store.rollback("a1") is None
    assert store.active_versions() == {}


def test_adapters_are_per_base_model(store: Store) -> None:
    store.register_candidate("small-1", route=ROUTE, path="/a/small-1", base_model="embedded:0.5b")
    store.register_candidate("legacy", route="borrow", path="/a/legacy")  # base not recorded
    with pytest.raises(InvalidRecord, match=re.escape("trained on embedded:0.5b, not embedded:1.5b")):
        store.promote("small-1", base_model="embedded:1.5b")
    assert store.adapter("small-1").status == "candidate", "a refused promotion changes nothing"
    store.promote("small-1", base_model="embedded:0.5b")
    store.promote("legacy", base_model="embedded:1.5b")
    assert set(store.active_versions("embedded:0.5b")) == {ROUTE, "borrow"}
    assert set(store.active_versions("embedded:1.5b")) == {"borrow"}, "another base's adapter is not used"
    assert set(store.active_versions()) == {ROUTE, "borrow"}


def test_candidate_with_existing_version_is_refused(store: Store) -> None:
    store.register_candidate("a1", route=ROUTE, path="/a1")
    with pytest.raises(InvalidRecord, match="exists already"):
        store.register_candidate("a1", route=ROUTE, path="/other")
    assert store.set_adapter_metrics("a1", {"pass@1": 0.4}).metrics == {"pass@1": 0.4}
    assert store.reject("a1", "worse than base").metrics["rejected_reason"] == "worse than base"


def test_learner_cycle_moves_through_states(store: Store) -> None:
    cycle_id = store.start_cycle("collecting", {"examples": 3})
    store.update_cycle(cycle_id, state="training", details={"route": ROUTE})
    done = store.finish_cycle(cycle_id, "promoted")
    assert (done.state, done.outcome, done.details) == ("finished", "promoted", {"examples": 3, "route": ROUTE})
    assert done.finished_at is not None
    with pytest.raises(NotFound):
        store.update_cycle(cycle_id + 1, state="x")


def test_eval_run_records_results_and_lists_finished_runs(store: Store) -> None:
    run_id = store.start_eval_run("rustc+model", model="tiny", adapter_versions={ROUTE: "a1"}, seeds=[0, 1], attempts=3)
    store.record_eval_result(run_id, case_id="c1", source="model", route=ROUTE, passed=True, attempts_used=2)
    store.record_eval_result(
        run_id, case_id="c2", source="rustc", route=ROUTE, passed=False, reason="E0308 remains", exact_match=False
    )
    store.record_eval_result(run_id, case_id="c2", source="rustc", route=ROUTE, passed=True, exact_match=True)
    assert store.latest_runs() == []  # Not finished yet.
    store.finish_eval_run(run_id, meta={"cases": 2})
    results = store.eval_results(run_id)
    assert [(r.case_id, r.passed, r.pass_at_1, r.exact_match) for r in results] == [
        ("c1", True, False, None),
        ("c2", True, True, True),
    ]
    run = store.eval_run(run_id)
    assert (run.strategy, run.seeds, run.attempts, run.meta) == ("rustc+model", (0, 1), 3, {"cases": 2})
    assert [r.id for r in store.latest_runs("rustc+model")] == [run_id]
    assert store.latest_runs("base-only") == []
    with pytest.raises(NotFound):
        store.record_eval_result(run_id + 1, case_id="c", source="model", route=ROUTE, passed=True)


# ----------------------------------------------------------------------------- data controls


def test_forget_before_a_date_deletes_only_older_records_and_sets_built_from_them(db_path: Path) -> None:
    clock = Clock(datetime(2025, 1, 1, tzinfo=UTC))
    with Store(db_path, clock=clock) as s:
        old = offer(s, 1)
        s.record_outcome(old.offer_id, "accepted")
        clock.advance(days=10)
        new = offer(s, 2)
        s.record_outcome(new.offer_id, "accepted")
        mixed = s.record_training_set(
            ROUTE, "/t/mixed.jsonl", n_examples=2, sha="s1", source_fix_ids=[old.fix_id, new.fix_id]
        )
        fresh = s.record_training_set(ROUTE, "/t/fresh.jsonl", n_examples=1, sha="s2", source_fix_ids=[new.fix_id])
        report = s.forget(before=datetime(2025, 1, 5, tzinfo=UTC))
        assert report.counts == {"suggestions": 1, "offers": 1, "diagnostics": 1, "outcomes": 1, "training_sets": 1}
        assert report.training_sets == (mixed,)
        assert [e.fix_id for e in s.accepted_fixes()] == [new.fix_id]
        assert s.training_sets() == [fresh]
        assert s.fix(old.fix_id) is None


def test_retention_forgets_records_older_than_the_window(db_path: Path) -> None:
    clock = Clock(datetime(2025, 1, 1, tzinfo=UTC))
    with Store(db_path, clock=clock) as s:
        s.record_outcome(offer(s, 1).offer_id, "rejected")
        clock.advance(days=100)
        kept = offer(s, 2)
        assert s.apply_retention(0).total == 0
        assert s.apply_retention(90).counts == {
            "suggestions": 1,
            "offers": 1,
            "diagnostics": 1,
            "outcomes": 1,
            "training_sets": 0,
        }
        assert s.counts()["suggestions"] == 1 and s.fix(kept.fix_id) == kept.fix and s.offer(kept.offer_id) == kept


def test_forget_everything_keeps_adapter_registry(store: Store) -> None:
    store.record_outcome(offer(store, 1).offer_id, "accepted")
    store.record_training_set(ROUTE, "/t/a.jsonl", n_examples=1, sha="s", source_fix_ids=[])
    store.register_candidate("a1", route=ROUTE, path="/a1")
    report = store.forget()
    assert report.counts == {"outcomes": 1, "offers": 1, "suggestions": 1, "diagnostics": 1, "training_sets": 1}
    assert [t.path for t in report.training_sets] == ["/t/a.jsonl"]
    counts = store.counts()
    assert (counts["diagnostics"], counts["outcomes"], counts["adapter_versions"]) == (0, 0, 1)


def test_export_then_import_reproduces_every_record(store: Store, tmp_path: Path) -> None:
    for n in range(3):
        store.record_outcome(offer(store, n).offer_id, ("accepted", "rejected", "ignored")[n])
    store.record_outcome(offer(store, 5).offer_id, "edited", "fn mine() {}")
    store.record_training_set(ROUTE, "/t/a.jsonl", n_examples=1, sha="s", source_fix_ids=["x"])
    store.register_candidate("a1", route=ROUTE, path="/a1")
    store.register_candidate("a2", route=ROUTE, path="/a2", parent_version="a1")
    store.promote("a2")
    store.finish_cycle(store.start_cycle(), "nothing to learn")
    run_id = store.start_eval_run("base")
    store.record_eval_result(run_id, case_id="c", source="model", route=ROUTE, passed=True, candidate="fn x() {}")
    first = io.StringIO()
    written = store.export_jsonl(first)
    assert written == sum(
        store.counts()[t]
        for t in (
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
    )
    with Store(tmp_path / "copy.sqlite3") as copy:
        assert copy.import_jsonl(io.StringIO(first.getvalue())) == written
        second = io.StringIO()
        copy.export_jsonl(second)
        assert second.getvalue().splitlines()[1:] == first.getvalue().splitlines()[1:]
        assert copy.accepted_fixes() == store.accepted_fixes()
        assert copy.active_versions() == store.active_versions()
        with pytest.raises(InvalidRecord, match="empty store"):
            copy.import_jsonl(io.StringIO(first.getvalue()))


# ----------------------------------------------------------------------------- background and concurrent writes


def test_async_writer_applies_writes_in_order_and_reports_failures(store: Store) -> None:
    fix = offer(store, 1)
    with AsyncWriter() as writer:
        futures = [writer.submit(store.record_outcome, fix.offer_id, kind) for kind in ("accepted", "rejected")]
        bad = writer.submit(store.record_outcome, "unknown-fix", "accepted")
        writer.flush(timeout=10)
        assert [f.result() for f in futures] == [True, True]
        assert isinstance(bad.exception(), NotFound)
        later = writer.submit(store.heartbeat, "server")  # The thread survived the failure.
    assert later.done() and later.exception() is None
    assert [o.kind for o in store.outcomes()] == ["rejected"]
    with pytest.raises(Exception, match="closed"):
        writer.submit(store.heartbeat, "server")


def test_async_writer_does_not_block_the_caller_while_another_process_holds_the_lock(
    store: Store, db_path: Path
) -> None:
    fix = offer(store, 1)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # Another process mid-transaction (the learner, say).
    with AsyncWriter() as writer:
        started = time.monotonic()
        future = writer.submit(store.record_outcome, fix.offer_id, "accepted")
        assert time.monotonic() - started < 0.1
        time.sleep(0.3)
        assert not future.done()  # Still waiting on the lock, in the background.
        other.execute("COMMIT")
        writer.flush(timeout=10)
    other.close()
    assert future.result() is True
    assert [o.kind for o in store.outcomes()] == ["accepted"]


KINDS_WITH_CODE = [
    ("accepted", None),
    ("rejected", None),
    ("edited", "fn mine() {}"),
    ("reverted", None),
    ("ignored", None),
]


def _write_for(
    path: str, name: str, pairs: list[tuple[str, str, str | None]], run_id: int, duration_s: float
) -> tuple[list[str], list[str]]:
    """One writer process: alternately a (shared) offer's outcome and a unique eval result."""
    outcomes: set[str] = set()
    cases: list[str] = []
    with Store(path) as store:
        deadline = time.monotonic() + duration_s
        i = 0
        while time.monotonic() < deadline:
            offer_id, kind, code = pairs[i % len(pairs)]
            store.record_outcome(offer_id, kind, code)
            outcomes.add(offer_id)
            case = f"{name}-{i}"
            store.record_eval_result(run_id, case_id=case, source=name, route=ROUTE, passed=True)
            cases.append(case)
            i += 1
    return sorted(outcomes), cases


def _read_while_written(path: str, duration_s: float) -> int:
    """The reader process: counts never go down and queries never fail while others write."""
    reads = 0
    last = (0, 0)
    with Store(path) as store:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            counts = store.counts()
            now = (counts["outcomes"], counts["eval_results"])
            assert now[0] >= last[0] and now[1] >= last[1], (last, now)
            store.accepted_fixes()
            last = now
            reads += 1
    return reads


@pytest.mark.parametrize("duration_s", [3.0])
def test_two_writer_processes_and_a_reader_lose_and_duplicate_nothing(db_path: Path, duration_s: float) -> None:
    with Store(db_path) as s:
        offer_ids = [offer(s, n).offer_id for n in range(40)]
        run_id = s.start_eval_run("concurrency")
    pairs = [(o, kind, code) for o in offer_ids for kind, code in KINDS_WITH_CODE]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=ctx) as pool:
        a = pool.submit(_write_for, str(db_path), "a", pairs, run_id, duration_s)
        b = pool.submit(_write_for, str(db_path), "b", pairs[::-1], run_id, duration_s)
        reader = pool.submit(_read_while_written, str(db_path), duration_s)
        (a_outcomes, a_cases), (b_outcomes, b_cases) = a.result(timeout=120), b.result(timeout=120)
        assert reader.result(timeout=120) > 0
    with Store(db_path) as s:
        stored = [o.offer_id for o in s.outcomes()]  # one row per offer, whatever its latest kind
        cases = [r.case_id for r in s.eval_results(run_id)]
    assert len(stored) == len(set(stored))
    assert set(stored) == set(a_outcomes) | set(b_outcomes)
    assert a_cases and b_cases
    assert len(cases) == len(a_cases) + len(b_cases)
    assert set(cases) == set(a_cases) | set(b_cases)
