"""The local feedback store: one SQLite file (``settings.db_path``) shared by the editor's server,
the learner and the eval harness. This package is the only place that knows table names; rows
become the frozen records of :mod:`learner.store.records` before they leave it.

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
    offer = store.record_offer(diag_id, candidate, before_text=..., after_text=..., verified=True,
                               verdict_reason="compiles", document_uri=uri, document_version=3)
                                             # -> OfferRecord: one showing; .fix is the shared FixRecord
    store.record_outcome(offer.offer_id, "accepted" | "rejected" | "edited" | "reverted" | "ignored",
                         final_code=None, final_ranges=())  # one row per offer: its latest decision
    store.heartbeat("server"); store.last_heartbeat("learner") -> datetime | None
    writer = AsyncWriter(); writer.submit(store.record_outcome, offer_id, "accepted"); writer.flush(); writer.close()

Learning::

    store.accepted_fixes(route=None, since=None) -> list[AcceptedFix]   # edited ones weigh most
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

Layout: :class:`Store` is one mixin per concern over :class:`~learner.store.db.StoreBase` (the
connection, its lock and its transactions), so each module holds its own tables' SQL and mappers::

    errors.py      StoreError and its subclasses
    records.py     the frozen records and the vocabularies (outcome kinds, statuses, weights)
    db.py          opening the file safely; StoreBase
    migrations.py  the schema, as ordered migrations
    feedback.py    FeedbackMixin: diagnostics, fixes, outcomes, heartbeats, training examples, counts
    evals.py       EvalMixin: eval runs and their results
    registry.py    RegistryMixin: adapter versions, promotion and rollback
    learning.py    LearningMixin: learner cycles and training sets
    data.py        DataMixin: export/import, forget, retention
    writer.py      AsyncWriter: store writes on one background thread
"""

from __future__ import annotations

from learner.store import migrations
from learner.store.data import EXPORT_FORMAT, EXPORT_TABLES, DataMixin
from learner.store.db import BUSY_TIMEOUT_S, SQLITE_HEADER, StoreBase
from learner.store.errors import InvalidRecord, NotFound, StoreBusy, StoreCorrupt, StoreError, StoreTooNew
from learner.store.evals import EvalMixin
from learner.store.feedback import FeedbackMixin, new_offer_id
from learner.store.learning import LearningMixin
from learner.store.records import (
    ACCEPTED_WEIGHT,
    ADAPTER_STATUSES,
    EDITED_WEIGHT,
    HEARTBEAT_SOURCES,
    OUTCOME_KINDS,
    AcceptedFix,
    AdapterVersion,
    DiagnosticRecord,
    EvalCaseResult,
    EvalRun,
    FixRecord,
    ForgetReport,
    KeptRange,
    LearnerCycle,
    OfferRecord,
    OutcomeRecord,
    TrainingSetRecord,
)
from learner.store.registry import RegistryMixin
from learner.store.writer import AsyncWriter

__all__ = [
    "ACCEPTED_WEIGHT",
    "ADAPTER_STATUSES",
    "BUSY_TIMEOUT_S",
    "EDITED_WEIGHT",
    "EXPORT_FORMAT",
    "EXPORT_TABLES",
    "HEARTBEAT_SOURCES",
    "OUTCOME_KINDS",
    "SQLITE_HEADER",
    "AcceptedFix",
    "AdapterVersion",
    "AsyncWriter",
    "DiagnosticRecord",
    "EvalCaseResult",
    "EvalRun",
    "FixRecord",
    "ForgetReport",
    "InvalidRecord",
    "KeptRange",
    "LearnerCycle",
    "NotFound",
    "OfferRecord",
    "OutcomeRecord",
    "Store",
    "StoreBusy",
    "StoreCorrupt",
    "StoreError",
    "StoreTooNew",
    "TrainingSetRecord",
    "migrations",
    "new_offer_id",
]


class Store(FeedbackMixin, EvalMixin, RegistryMixin, LearningMixin, DataMixin, StoreBase):
    """The feedback store. Thread-safe (one lock around one connection); see the module docstring."""
