"""Fixing a whole crate, stage after stage: apply the best verified fix, check again, go on.

Why a loop: rustc reports borrow-check errors only once the type errors are gone, so one check
never shows everything to fix; and a file with many errors (dozens of E0308) is fixed far more
often by applying all of rustc's machine-applicable suggestions at once, as ``cargo fix`` does,
than one error at a time. Each round therefore tries that combined candidate first (verified like
any other: no new errors, fewer than before), then each error's own fix sources in order, and
writes the first verified fix. It stops when the crate builds, when no error has a verified fix,
when a round would bring back files seen before (a loop), or after ``max_rounds``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from learner.config import Settings
from learner.fix.pipeline import CheckSession, apply_fix, check_path, errors_for_path, fix_diagnostic
from learner.fix.router import route_for
from learner.fix.sources import FixSource
from learner.progress import Progress, no_progress
from learner.records import Applicability, Edit, FixCandidate, RustDiagnostic

#: The combined candidate's source name (what ``--json`` and the eval report show).
COMBINED_SOURCE = "rustc-all"


@dataclass(frozen=True)
class CrateFixStep:
    """One fix written during a whole-crate run."""

    round: int
    title: str
    source: str
    #: Errors reported before this fix, and their codes.
    errors_before: int
    codes: tuple[str, ...]
    files: tuple[str, ...]


@dataclass
class CrateFixRun:
    """What a whole-crate run did, in order, and why it stopped."""

    steps: list[CrateFixStep] = field(default_factory=list)
    #: The errors the last check still reported (empty when the crate builds).
    remaining: list[RustDiagnostic] = field(default_factory=list)
    reason: str = ""

    @property
    def fixed(self) -> bool:
        return not self.remaining


def combined_rustc_candidate(errors: Sequence[RustDiagnostic]) -> FixCandidate | None:
    """rustc's machine-applicable suggestions for all ``errors`` as one candidate, or None when fewer
    than two errors have one (then it is no different from fixing one error). A suggestion whose
    edits overlap one already taken is left for a later round."""
    taken: list[Edit] = []
    covered = 0
    for diag in errors:
        for suggestion in diag.suggestions:
            if suggestion.applicability is not Applicability.MACHINE_APPLICABLE or not suggestion.edits:
                continue
            fresh = [e for e in suggestion.edits if e not in taken]
            if any(_overlap(e, t) for e in fresh for t in taken):
                continue
            taken.extend(fresh)
            covered += 1
            break
    if covered < 2:
        return None
    return FixCandidate(
        source=COMBINED_SOURCE,
        title=f"rustc: apply the machine-applicable suggestions of {covered} errors together",
        edits=tuple(sorted(taken, key=lambda e: (e.file, e.byte_start))),
        route=route_for(errors[0]).name,
        preferred=True,
    )


def _overlap(a: Edit, b: Edit) -> bool:
    if a.file != b.file:
        return False
    if a.byte_start == a.byte_end == b.byte_start == b.byte_end:
        return True  # two insertions at one place: their order would be a guess
    return a.byte_start < b.byte_end and b.byte_start < a.byte_end


def _fingerprint(session: CheckSession) -> str:
    """The files the errors point into, as they are now (the check's own hashes), to notice a run
    going round in circles."""
    return hashlib.sha256(repr(sorted(session.snapshot.items())).encode()).hexdigest()


def fix_crate(
    path: Path,
    settings: Settings,
    sources: Sequence[FixSource],
    *,
    max_rounds: int = 50,
    progress: Progress = no_progress,
) -> CrateFixRun:
    """Apply verified fixes to the crate of ``path`` until it builds or nothing verifies (writes files)."""
    run = CrateFixRun()
    seen: set[str] = set()
    for round_no in range(1, max_rounds + 1):
        session = check_path(path, settings)
        errors = errors_for_path(session, path)
        run.remaining = errors
        if not errors:
            run.reason = "the crate builds"
            return run
        fingerprint = _fingerprint(session)
        if fingerprint in seen:
            run.reason = "a fix brought back code seen before; stopping so it does not go round in circles"
            return run
        seen.add(fingerprint)
        progress(f"round {round_no}: {len(errors)} error(s)", None)
        chosen = _choose(session, errors, settings, sources, progress)
        if chosen is None:
            run.reason = "no error has a verified fix"
            return run
        written = apply_fix(session, chosen)
        root = session.crate.root
        run.steps.append(
            CrateFixStep(
                round_no,
                chosen.title,
                chosen.source,
                len(errors),
                tuple(d.code or "-" for d in errors),
                tuple(str(p.relative_to(root)) for p in written),
            )
        )
    session = check_path(path, settings)
    run.remaining = errors_for_path(session, path)
    run.reason = "the crate builds" if not run.remaining else f"stopped after {max_rounds} rounds"
    return run


def combined_fix(session: CheckSession, errors: list[RustDiagnostic]) -> FixCandidate | None:
    """The combined rustc candidate when it verifies (no new errors) and leaves fewer errors, else None."""
    combined = combined_rustc_candidate(errors)
    if combined is None:
        return None
    verdict = session.verifier.verify(combined, None)
    return combined if verdict.ok and len(verdict.remaining_codes) < len(errors) else None


def _choose(
    session: CheckSession,
    errors: list[RustDiagnostic],
    settings: Settings,
    sources: Sequence[FixSource],
    progress: Progress,
) -> FixCandidate | None:
    """The combined rustc candidate if it verifies and removes errors, else the first error's best fix."""
    if any(s.name == "rustc" for s in sources) and (combined := combined_fix(session, errors)) is not None:
        return combined
    for i, diagnostic in enumerate(errors):
        progress(f"error {i + 1}/{len(errors)}: {diagnostic.code or diagnostic.message}", None)
        result = fix_diagnostic(session, diagnostic, sources, settings=settings)
        if result.fixes:
            return result.fixes[0].candidate
    return None
