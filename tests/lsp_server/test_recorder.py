"""The server's recorder against a real SQLite store on disk and a real rustc diagnostic.

Pins down: what a diagnostic, an offer and an outcome leave in the store (read back through
:class:`~learner.store.Store`), that writes run in submission order on the background writer (an
outcome right after its offer is stored), that failures reach the returned future, that nothing is
recorded with learning off or for excluded files, that heartbeats are throttled, that closing finishes
queued writes, and that an unreadable store turns recording off without touching the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from learner.config import Settings
from learner.fix.router import route_for
from learner.records import Applicability, Edit, FixCandidate, RustDiagnostic, Verdict
from learner.rust.check import check
from learner.rust.crate import locate_crate
from learner.rust.toolchain import rustc_version
from learner.store import NotFound, Store, StoreError, new_offer_id
from lsp_server import recorder as recorder_module
from lsp_server.fixes import Offer, ShownOffer, regions_changed
from lsp_server.recorder import Recorder
from tests.rust_fixtures import MOVED_VALUE_BIN


@dataclass(frozen=True)
class Compiled:
    """A lone ``main.rs`` checked by the real rustc, with its one error."""

    root: Path
    data: bytes
    diagnostic: RustDiagnostic


@pytest.fixture(scope="module")
def moved_value(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    root = tmp_path_factory.mktemp("proj")
    path = root / "main.rs"
    path.write_text(MOVED_VALUE_BIN)
    [error] = check(locate_crate(path), root / "target").errors
    assert error.code == "E0382"
    return Compiled(root.resolve(), path.read_bytes(), error)


def _settings(tmp_path: Path, **options: Any) -> Settings:
    return Settings.from_mapping(
        {"dataDir": str(tmp_path / "data"), "cacheDir": str(tmp_path / "cache"), "modelEnabled": False, **options}
    )


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(_settings(tmp_path))
    rec.open()
    yield rec
    rec.close()


def _apply(data: bytes, edits: tuple[Edit, ...]) -> bytes:
    for e in sorted(edits, key=lambda e: e.byte_start, reverse=True):
        data = data[: e.byte_start] + e.new_text.encode() + data[e.byte_end :]
    return data


def _offer(compiled: Compiled, *, source: str = "rustc", reason: str = "compiles") -> Offer:
    """rustc's machine-applicable suggestion for the error, as the server offers it."""
    diag = compiled.diagnostic
    suggestion = next(s for s in diag.suggestions if s.applicability is Applicability.MACHINE_APPLICABLE)
    candidate = FixCandidate(source, suggestion.message, suggestion.edits, route_for(diag).name, preferred=True)
    before = {"main.rs": compiled.data}
    after = {"main.rs": _apply(compiled.data, suggestion.edits)}
    regions = regions_changed(diag, suggestion.edits, before, after)
    return Offer(candidate, Verdict(ok=True, reason=reason), diag, compiled.root, regions, before)


def _shown(compiled: Compiled, version: int = 1) -> ShownOffer:
    """The offer as shown in one document version (a fresh offer id each time)."""
    return ShownOffer(new_offer_id(), _offer(compiled), (compiled.root / "main.rs").as_uri(), version)


def _reopen(settings: Settings) -> Store:
    return Store.open(settings)


def test_open_creates_the_store_and_reports_no_problem(recorder: Recorder) -> None:
    assert recorder.store is not None and recorder.problem is None
    assert recorder.settings.db_path.is_file()
    assert recorder.store.path == recorder.settings.db_path


def test_diagnostic_is_recorded_with_its_route_toolchain_edition_and_context(
    recorder: Recorder, moved_value: Compiled
) -> None:
    recorder.diagnostic(moved_value.root, "2021", moved_value.diagnostic, "fn main() { ... }")
    recorder.writer.flush(timeout=10)
    assert recorder.store is not None
    assert recorder.store.counts()["diagnostics"] == 1
    record = recorder.store.diagnostic(1)
    assert record.code == "E0382" and record.route == "moved-value"
    assert record.file == "main.rs" and record.crate == str(moved_value.root)
    assert record.toolchain == rustc_version() and record.toolchain.startswith("rustc ")
    assert record.edition == "2021" and record.context == "fn main() { ... }"
    assert record.diag_key == moved_value.diagnostic.key


def test_diagnostic_without_a_span_is_not_recorded(recorder: Recorder, moved_value: Compiled) -> None:
    spanless = RustDiagnostic(level="error", message="aborting due to 1 previous error", code=None)
    recorder.diagnostic(moved_value.root, "2021", spanless, "")
    recorder.writer.flush(timeout=10)
    assert recorder.store is not None and recorder.store.counts()["diagnostics"] == 0


def test_offer_records_its_diagnostic_suggestion_and_offer_and_returns_the_offer_id(
    recorder: Recorder, moved_value: Compiled
) -> None:
    shown = _shown(moved_value, version=4)
    future = recorder.offer("2021", shown, "context text")
    assert future is not None
    assert future.result(timeout=10) == shown.offer_id
    assert recorder.store is not None
    record = recorder.store.offer(shown.offer_id)
    assert record is not None and (record.document_uri, record.document_version) == (shown.uri, 4)
    fix = record.fix
    assert fix.fix_id == shown.fix_id
    assert fix.verified and fix.verdict_reason == "compiles" and fix.source == "rustc"
    assert fix.edits == shown.offer.candidate.edits
    assert fix.before_text == shown.offer.before_text and fix.after_text == shown.offer.after_text
    assert "let t = s;" in fix.before_text and ".clone()" in fix.after_text
    diagnostic = recorder.store.diagnostic(fix.diagnostic_id)
    assert diagnostic.context == "context text" and diagnostic.code == "E0382"


def test_a_refused_candidate_is_recorded_as_an_unverified_suggestion_never_an_offer(
    recorder: Recorder, moved_value: Compiled
) -> None:
    offer = _offer(moved_value, source="model", reason="still fails: E0382")
    future = recorder.refused("2021", offer, "")
    assert future is not None and future.result(timeout=10) > 0
    assert recorder.store is not None
    fix = recorder.store.fix(offer.fix_id)
    assert fix is not None and not fix.verified and fix.verdict_reason == "still fails: E0382"
    assert recorder.store.offers() == []


def test_outcome_submitted_right_after_its_offer_is_stored_after_it(recorder: Recorder, moved_value: Compiled) -> None:
    shown = _shown(moved_value)
    recorder.offer("2021", shown, "")
    outcome = recorder.outcome(shown, "accepted")
    assert outcome is not None
    assert outcome.result(timeout=10) is True
    assert recorder.store is not None
    [record] = recorder.store.outcomes(shown.fix_id)
    assert record.kind == "accepted" and record.offer_id == shown.offer_id
    [accepted] = recorder.store.accepted_fixes()
    assert accepted.fix_id == shown.fix_id and accepted.route == "moved-value"


def test_the_same_fix_shown_twice_is_two_offers(recorder: Recorder, moved_value: Compiled) -> None:
    first, second = _shown(moved_value, 1), _shown(moved_value, 2)
    recorder.offer("2021", first, "")
    recorder.offer("2021", second, "")
    recorder.outcome(first, "rejected")
    done = recorder.outcome(second, "accepted")
    assert done is not None and done.result(timeout=10) is True
    assert recorder.store is not None
    assert sorted(o.kind for o in recorder.store.outcomes(first.fix_id)) == ["accepted", "rejected"]


def test_outcome_for_an_unknown_offer_fails_on_its_future_and_the_writer_keeps_going(
    recorder: Recorder, moved_value: Compiled
) -> None:
    failed = recorder.outcome(_shown(moved_value), "rejected")  # never recorded as offered
    assert failed is not None
    assert isinstance(failed.exception(timeout=10), NotFound)
    shown = _shown(moved_value)
    later = recorder.offer("2021", shown, "")
    assert later is not None and later.result(timeout=10) == shown.offer_id


def test_invalid_outcome_kind_fails_on_its_future(recorder: Recorder, moved_value: Compiled) -> None:
    shown = _shown(moved_value)
    recorder.offer("2021", shown, "")
    bad = recorder.outcome(shown, "loved-it")
    assert bad is not None and isinstance(bad.exception(timeout=10), ValueError)
    assert recorder.store is not None and recorder.store.outcomes(shown.fix_id) == []


def test_nothing_is_recorded_when_learning_is_off(tmp_path: Path, moved_value: Compiled) -> None:
    rec = Recorder(_settings(tmp_path, learningEnabled=False))
    rec.open()
    try:
        shown = _shown(moved_value)
        assert rec.excluded(moved_value.root, "main.rs")
        rec.diagnostic(moved_value.root, "2021", moved_value.diagnostic, "")
        assert rec.offer("2021", shown, "") is None
        assert rec.outcome(shown, "accepted") is None
        rec.writer.flush(timeout=10)
        assert rec.store is not None
        counts = rec.store.counts()
        assert (counts["diagnostics"], counts["suggestions"], counts["outcomes"]) == (0, 0, 0)
    finally:
        rec.close()


@pytest.mark.parametrize(
    ("globs", "excluded"),
    [
        ([], False),
        (["main.rs"], True),
        (["*.rs"], True),
        (["*/proj*/main.rs"], True),
        (["secret/*"], False),
        (["*.toml", "main.*"], True),
    ],
)
def test_exclude_globs_match_the_crate_relative_or_the_absolute_path(
    tmp_path: Path, moved_value: Compiled, globs: list[str], excluded: bool
) -> None:
    rec = Recorder(_settings(tmp_path, excludeGlobs=globs))
    try:
        assert rec.excluded(moved_value.root, "main.rs") is excluded
    finally:
        rec.close()


def test_offer_and_outcome_for_an_excluded_file_are_not_recorded(tmp_path: Path, moved_value: Compiled) -> None:
    rec = Recorder(_settings(tmp_path, excludeGlobs=["*.rs"]))
    rec.open()
    try:
        shown = _shown(moved_value)
        assert rec.offer("2021", shown, "") is None
        assert rec.outcome(shown, "accepted") is None, "accepting it must not fail on a missing offer"
        assert rec.refused("2021", shown.offer, "") is None
        rec.diagnostic(moved_value.root, "2021", moved_value.diagnostic, "")
        rec.writer.flush(timeout=10)
        assert rec.store is not None
        assert rec.store.counts()["diagnostics"] == 0 and rec.store.counts()["suggestions"] == 0
    finally:
        rec.close()


def test_heartbeat_is_written_at_most_once_per_interval(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    assert recorder.store is not None
    assert recorder.store.last_heartbeat("server") is None
    recorder.heartbeat()
    recorder.writer.flush(timeout=10)
    first = recorder.store.last_heartbeat("server")
    assert first is not None
    recorder.heartbeat()
    recorder.writer.flush(timeout=10)
    assert recorder.store.last_heartbeat("server") == first, "a second heartbeat within the interval is dropped"
    monkeypatch.setattr(recorder_module, "HEARTBEAT_EVERY_S", 0.0)
    recorder.heartbeat()
    recorder.writer.flush(timeout=10)
    later = recorder.store.last_heartbeat("server")
    assert later is not None and later > first


def test_close_finishes_queued_writes_before_closing_the_store(tmp_path: Path, moved_value: Compiled) -> None:
    settings = _settings(tmp_path)
    rec = Recorder(settings)
    rec.open()
    shown = _shown(moved_value)
    rec.offer("2021", shown, "")
    rec.outcome(shown, "rejected")
    rec.close()
    with _reopen(settings) as store:
        assert store.offer(shown.offer_id) is not None
        assert [o.kind for o in store.outcomes(shown.fix_id)] == ["rejected"]


def test_recorder_that_was_never_opened_submits_nothing(tmp_path: Path, moved_value: Compiled) -> None:
    rec = Recorder(_settings(tmp_path))
    try:
        assert rec.store is None
        assert rec.submit(lambda store: store) is None
        assert rec.offer("2021", _shown(moved_value), "") is None
        assert rec.outcome(_shown(moved_value), "accepted") is None
        rec.heartbeat()
        rec.diagnostic(moved_value.root, "2021", moved_value.diagnostic, "")
    finally:
        rec.close()
    assert not rec.settings.db_path.exists()


def test_unreadable_store_turns_recording_off_and_is_left_untouched(tmp_path: Path, moved_value: Compiled) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    garbage = b"this is not an sqlite database\n" * 4
    settings.db_path.write_bytes(garbage)
    rec = Recorder(settings)
    rec.open()
    try:
        assert rec.store is None
        assert rec.problem is not None
        assert "nothing will be recorded" in rec.problem and str(settings.db_path) in rec.problem
        assert rec.offer("2021", _shown(moved_value), "") is None
        assert rec.outcome(_shown(moved_value), "accepted") is None
        rec.heartbeat()
    finally:
        rec.close()
    assert settings.db_path.read_bytes() == garbage


def test_reopening_after_the_store_is_repaired_clears_the_problem(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    settings.db_path.write_bytes(b"garbage" * 10)
    rec = Recorder(settings)
    try:
        rec.open()
        assert rec.store is None and rec.problem is not None
        Store.quarantine(settings.db_path)
        rec.open()
        assert rec.store is not None and rec.problem is None
    finally:
        rec.close()


def test_the_first_heartbeat_is_written_however_early_the_clock_reads(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module.time, "monotonic", lambda: 5.0)  # a machine booted 5 s ago
    recorder.heartbeat()
    recorder.writer.flush(timeout=10)
    assert recorder.store is not None and recorder.store.last_heartbeat("server") is not None


def test_after_close_the_recorder_records_nothing_and_never_raises(tmp_path: Path, moved_value: Compiled) -> None:
    rec = Recorder(_settings(tmp_path))
    rec.open()
    rec.close()
    rec.heartbeat()
    assert rec.offer("2021", _shown(moved_value), "") is None
    assert rec.outcome(_shown(moved_value), "accepted") is None


def test_reopening_closes_the_previous_connection(tmp_path: Path) -> None:
    rec = Recorder(_settings(tmp_path))
    rec.open()
    first = rec.store
    rec.open()
    assert first is not None and rec.store is not None and rec.store is not first
    with pytest.raises(StoreError):
        first.heartbeat("server")  # closed, not leaked
    rec.close()
