"""The frozen records the store hands out, and the fixed vocabularies its rows use.

Why: rows never leave the store package as dicts; callers get these immutable values. A field
is named after the column it comes from (``FixRecord.edits`` is decoded from ``edits_json``;
``AcceptedFix`` is a join), which lets ``db._from_row`` map most of a row
by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from learner.records import Edit

OUTCOME_KINDS = ("accepted", "rejected", "edited", "reverted", "ignored")
ADAPTER_STATUSES = ("candidate", "active", "rejected", "retired")
HEARTBEAT_SOURCES = ("server", "learner")
#: Training weight of a fix the user accepted as offered / of the code they ended up writing.
ACCEPTED_WEIGHT = 1.0
EDITED_WEIGHT = 2.0


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
class OfferRecord:
    """One showing of a fix: the event outcomes belong to (the fix itself is ``fix``)."""

    offer_id: str
    fix: FixRecord
    document_uri: str
    document_version: int | None
    created_at: datetime

    @property
    def fix_id(self) -> str:
        return self.fix.fix_id


@dataclass(frozen=True)
class KeptRange:
    """The final text of one range an accepted fix changed, after the user's edits."""

    file: str
    text: str


@dataclass(frozen=True)
class OutcomeRecord:
    """What the user did with one offer: its latest decision (one row per offer)."""

    id: int
    offer_id: str
    fix_id: str
    kind: str
    #: For ``edited``: the enclosing items of the changed ranges as the user left them.
    final_code: str | None
    #: For ``edited``: the changed ranges' own final text, file by file.
    final_ranges: tuple[KeptRange, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AcceptedFix:
    """A fix the user accepted or edited: the diagnostic in its context, and the code the user kept.

    The learner turns it into a :class:`learner.learn.examples.TrainingExample`.
    """

    fix_id: str
    #: The offer this example was decided on (the same fix offered twice is two events).
    offer_id: str
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
