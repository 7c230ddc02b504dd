"""Typed, frozen records that cross every boundary of the pipeline.

rustc JSON is parsed into these as soon as it arrives (``diagnostics.py``); store rows are
mapped to them only inside ``learner/store/``; lsprotocol types stop at ``lsp_server/handlers.py``.
Paths inside records are relative to the crate (workspace) root so a record means the same
thing in the user's tree and in a scratch copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class Applicability(StrEnum):
    """rustc's confidence in a suggestion, as it spells it."""

    MACHINE_APPLICABLE = "MachineApplicable"
    MAYBE_INCORRECT = "MaybeIncorrect"
    HAS_PLACEHOLDERS = "HasPlaceholders"
    UNSPECIFIED = "Unspecified"


@dataclass(frozen=True)
class Span:
    """A region of a source file as rustc reports it (lines and columns 1-based, bytes 0-based)."""

    file: str
    byte_start: int
    byte_end: int
    line_start: int
    line_end: int
    column_start: int
    column_end: int
    is_primary: bool = False
    label: str | None = None
    suggested_replacement: str | None = None
    suggestion_applicability: Applicability | None = None


@dataclass(frozen=True)
class Edit:
    """Replace bytes ``[byte_start, byte_end)`` of ``file`` with ``new_text``."""

    file: str
    byte_start: int
    byte_end: int
    new_text: str


@dataclass(frozen=True)
class Suggestion:
    """One rustc suggestion: a help message and the edits that carry it out, applied together."""

    message: str
    applicability: Applicability
    edits: tuple[Edit, ...]


@dataclass(frozen=True)
class RustDiagnostic:
    """One compiler message with its spans and sub-diagnostics."""

    level: str
    message: str
    code: str | None = None
    rendered: str = ""
    spans: tuple[Span, ...] = ()
    children: tuple[RustDiagnostic, ...] = ()
    #: The cargo package/target that produced it, where known.
    target: str | None = None

    @property
    def is_error(self) -> bool:
        return self.level in ("error", "error: internal compiler error")

    @property
    def primary_span(self) -> Span | None:
        for span in self.spans:
            if span.is_primary:
                return span
        return self.spans[0] if self.spans else None

    @property
    def secondary_spans(self) -> tuple[Span, ...]:
        """Non-primary spans of this message and of its notes and suggestions: where related items live
        (a suggestion's span is where rustc thinks the fix goes, e.g. the struct that needs a derive)."""
        found = [s for s in self.spans if not s.is_primary]
        for child in self.children:
            found.extend(child.spans)
        return tuple(found)

    @property
    def suggestions(self) -> tuple[Suggestion, ...]:
        """rustc's suggestions: each child with replacements becomes one, grouped by applicability."""
        found: list[Suggestion] = []
        for child in self.children:
            by_kind: dict[Applicability, list[Edit]] = {}
            for span in child.spans:
                if span.suggested_replacement is None:
                    continue
                kind = span.suggestion_applicability or Applicability.UNSPECIFIED
                by_kind.setdefault(kind, []).append(
                    Edit(span.file, span.byte_start, span.byte_end, span.suggested_replacement)
                )
            for kind, edits in by_kind.items():
                found.append(Suggestion(child.message, kind, tuple(edits)))
        return tuple(found)

    @property
    def key(self) -> str:
        """A stable identity for caching: code, file and position of the primary span, message."""
        span = self.primary_span
        where = f"{span.file}:{span.byte_start}-{span.byte_end}" if span else "-"
        digest = hashlib.sha1(self.message.encode()).hexdigest()[:10]
        return f"{self.code or 'nocode'}@{where}#{digest}"


#: The route of errors no table entry names: it answers with the base model, no adapter.
FALLBACK_ROUTE = "fallback"
#: The registry entry of a Share set (one artifact holding every route's coefficients).
SHARE_ROUTE = "share"
#: The registry entry of the naive baseline (one LoRA trained on every route in turn).
NAIVE_LORA_ROUTE = "naive-lora"


@dataclass(frozen=True)
class Route:
    """An error family: picks the adapter and the short hint the model sees."""

    name: str
    hint: str
    codes: tuple[str, ...] = ()

    @property
    def is_fallback(self) -> bool:
        return self.name == FALLBACK_ROUTE


@dataclass(frozen=True)
class FixCandidate:
    """A proposed fix for one diagnostic, before or after verification."""

    source: str
    title: str
    edits: tuple[Edit, ...]
    route: str
    #: rustc suggestions of MachineApplicable applicability are marked preferred.
    preferred: bool = False
    model: str | None = None
    adapter_version: str | None = None
    prompt_hash: str | None = None
    latency_s: float = 0.0
    attempt: int = 1

    @property
    def fix_id(self) -> str:
        """Content-derived id, so the same fix offered twice has the same id."""
        h = hashlib.sha1()
        for e in self.edits:
            h.update(f"{e.file}\0{e.byte_start}\0{e.byte_end}\0{e.new_text}\0".encode())
        h.update(self.source.encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Verdict:
    """The verifier's judgement of a candidate."""

    ok: bool
    reason: str
    #: Error codes still reported after the candidate was applied.
    remaining_codes: tuple[str, ...] = ()
    #: Errors after the fix that were not there before (rendered messages, for retries).
    new_errors: tuple[RustDiagnostic, ...] = ()
    check_s: float = 0.0


@dataclass(frozen=True)
class VerifiedFix:
    candidate: FixCandidate
    verdict: Verdict


@dataclass
class DiagnosticFixes:
    """Everything the pipeline learned about one error: its route and the fixes that survived."""

    diagnostic: RustDiagnostic
    route: Route
    fixes: list[VerifiedFix] = field(default_factory=list)
    #: Candidates the verifier refused, with why (shown with ``--verbose`` and in eval).
    rejected: list[VerifiedFix] = field(default_factory=list)
    #: Why a fix source produced nothing (model failed to load, ...), for the user.
    notes: list[str] = field(default_factory=list)
