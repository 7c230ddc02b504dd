"""The server's blocking work, run on worker threads: checking a crate, verifying rustc's
suggestions, asking the model. Nothing here touches the event loop or lsprotocol.

A check is two phases so the editor sees diagnostics as soon as cargo answers:
:func:`check_crate` (cargo, ~0.3 s warm) and then :func:`verify_rustc` (each suggestion compiled
in the scratch mirror, ~0.1-0.4 s each). Both honour the ``cancel`` event a newer save sets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.fix.pipeline import CheckSession, check_path, fix_diagnostic
from learner.fix.sources import ModelFixSource, RustcSuggestionSource
from learner.model.handle import RuntimeHandle
from learner.progress import Progress, no_progress
from learner.records import RustDiagnostic
from learner.rust.check import CheckCancelled
from learner.rust.crate import CrateRef
from learner.rust.items import region_at
from lsp_server.fixes import ModelResult, Offer, make_offer

log = logging.getLogger(__name__)

#: rustc suggestions are verified for at most this many errors per check.
MAX_VERIFIED_ERRORS = 20
_PUBLISHED_LEVELS = ("error", "error: internal compiler error", "warning")


@dataclass(frozen=True)
class OpenDocument:
    """An editor buffer when the check started: what the check's results are valid for."""

    uri: str
    version: int | None
    text: str


@dataclass
class CrateCheck:
    """One check of one crate, as the server keeps it."""

    session: CheckSession
    #: Published diagnostics (errors and warnings) by the absolute path of their primary span.
    by_file: dict[Path, list[RustDiagnostic]]
    #: Text of every file a published diagnostic points into (``rel -> bytes``), to place ranges.
    sources: dict[str, bytes]
    #: Open buffers under the crate when the check started whose text matched the disk.
    documents: dict[Path, OpenDocument]
    #: Open buffers whose unsaved text differs from what cargo read: their results are stale.
    dirty: set[Path]
    #: The enclosing item's text of each error (what the store keeps as context), by error key.
    contexts: dict[str, str] = field(default_factory=dict)
    #: rustc's verified suggestions by error key; filled by :func:`verify_rustc`.
    offers: dict[str, list[Offer]] = field(default_factory=dict)

    @property
    def crate(self) -> CrateRef:
        return self.session.crate

    @property
    def root(self) -> Path:
        return self.session.crate.root

    def covers(self, path: Path) -> bool:
        crate = self.session.crate
        if crate.single_file is not None:
            return path == (crate.root / crate.single_file).resolve()
        return path.is_relative_to(crate.root.resolve())

    def errors_in(self, path: Path) -> list[RustDiagnostic]:
        return [d for d in self.by_file.get(path, []) if d.is_error]

    def find(self, path: Path, key: str) -> RustDiagnostic | None:
        return next((d for d in self.errors_in(path) if d.key == key), None)


def check_crate(
    path: Path, settings: Settings, cancel: threading.Event, documents: Mapping[Path, OpenDocument]
) -> CrateCheck:
    """Run cargo (or rustc) on the crate of ``path`` and group its diagnostics by file."""
    session = check_path(path, settings, cancel=cancel)
    root = session.crate.root
    by_file: dict[Path, list[RustDiagnostic]] = {}
    sources: dict[str, bytes] = {}
    for diag in session.result.diagnostics:
        span = diag.primary_span
        if diag.level not in _PUBLISHED_LEVELS or span is None:
            continue
        for s in (span, *diag.secondary_spans):
            if s.file not in sources and (root / s.file).is_file():
                sources[s.file] = (root / s.file).read_bytes()
        if span.file in sources:
            by_file.setdefault((root / span.file).resolve(), []).append(diag)
    check = CrateCheck(session, by_file, sources, {}, set())
    for doc_path, doc in documents.items():
        if not check.covers(doc_path):
            continue
        on_disk = doc_path.read_bytes() if doc_path.is_file() else b""
        if doc.text.encode("utf-8") == on_disk:
            check.documents[doc_path] = doc
        else:
            check.dirty.add(doc_path)
    for diag in session.errors:
        check.contexts[diag.key] = _context(check, diag)
    return check


def _context(check: CrateCheck, diag: RustDiagnostic) -> str:
    span = diag.primary_span
    data = check.sources.get(span.file) if span else None
    if span is None or data is None:
        return ""
    return region_at(span.file, data, span.byte_start, span.byte_end).text(data)


def verify_rustc(check: CrateCheck, settings: Settings, cancel: threading.Event) -> dict[str, list[Offer]]:
    """rustc's suggestions for each error of a clean (not dirty) file, kept only if they compile."""
    source = RustcSuggestionSource()
    offers: dict[str, list[Offer]] = {}
    for path, diags in check.by_file.items():
        if path in check.dirty:
            continue
        for diag in [d for d in diags if d.is_error][:MAX_VERIFIED_ERRORS]:
            if cancel.is_set():
                raise CheckCancelled("a newer check superseded this one")
            result = fix_diagnostic(check.session, diag, [source], settings=settings, cancel=cancel)
            made = (make_offer(check.session.verifier, v, diag) for v in result.fixes)
            offers[diag.key] = [o for o in made if o is not None]
    return offers


def model_fix(
    check: CrateCheck,
    diag: RustDiagnostic,
    runtime: RuntimeHandle,
    settings: Settings,
    cancel: threading.Event,
    progress: Progress = no_progress,
) -> ModelResult:
    """Ask the model (with the route's adapter) for a fix of ``diag`` and verify each attempt."""
    source = ModelFixSource(runtime)
    try:
        fixes = fix_diagnostic(check.session, diag, [source], settings=settings, cancel=cancel, progress=progress)
    except SleepyCoderError as exc:  # GenerationError (prompt too long, torch failure): say why, keep serving
        log.warning("the model could not answer for %s: %s", diag.key, exc)
        return ModelResult(notes=[f"the model could not answer: {exc}"])
    result = ModelResult(notes=list(fixes.notes))
    verifier = check.session.verifier
    for verified in fixes.fixes:
        if (offer := make_offer(verifier, verified, diag)) is not None:
            result.offers.append(offer)
    answered = [v.candidate.adapter_version for v in [*fixes.fixes, *fixes.rejected] if v.candidate.adapter_version]
    result.adapter_version = answered[0] if answered else None
    for verified in fixes.rejected:
        result.refusals.append(verified.verdict.reason)
        if verified.candidate.edits and (offer := make_offer(verifier, verified, diag)) is not None:
            result.refused.append(offer)
    if cancel.is_set() and not result.offers:
        result.notes.insert(0, "cancelled")
    return result
