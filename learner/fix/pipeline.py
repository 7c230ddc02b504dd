"""The one pipeline every front end uses: diagnostics -> router -> fix sources -> verifier.

The CLI, the language server and the evaluation harness are thin layers over these
functions; none of them re-implements a step.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.files import write_atomic
from learner.fix.router import route_for
from learner.fix.sources import DEFAULT_ORDER, FixContext, FixSource, get_fix_source
from learner.fix.verifier import Verifier
from learner.model.handle import RuntimeHandle
from learner.progress import Progress, no_progress
from learner.records import DiagnosticFixes, FixCandidate, RustDiagnostic
from learner.rust.check import CheckResult, check
from learner.rust.crate import CrateRef, locate_crate, member_dir
from learner.rust.source import edits_by_file, unified_diff


class StaleFix(SleepyCoderError):
    """The file changed after the fix was computed; its offsets no longer apply."""


class FixNotWritten(SleepyCoderError):
    """The fix could not be written into the user's files (read-only tree, disk full, ...)."""


@dataclass
class CheckSession:
    """One check of a crate: its diagnostics and the verifier judging fixes against them."""

    crate: CrateRef
    result: CheckResult
    verifier: Verifier
    #: sha256 of each source file when it was checked, to refuse applying stale fixes.
    snapshot: dict[str, str]

    @property
    def errors(self) -> list[RustDiagnostic]:
        return self.result.errors


def target_dir_for(settings: Settings, crate: CrateRef) -> Path:
    return settings.targets_dir / crate.key


def check_path(path: Path, settings: Settings, cancel: threading.Event | None = None) -> CheckSession:
    """Locate the crate of ``path`` and check it in its persistent target dir."""
    crate = locate_crate(path)
    result = check(
        crate,
        target_dir_for(settings, crate),
        timeout_s=settings.check_timeout_s,
        cancel=cancel,
        offline=not settings.cargo_network,
    )
    snapshot = {}
    for diag in result.errors:
        for span in (*diag.spans, *diag.secondary_spans):
            if span.file not in snapshot and (crate.root / span.file).is_file():
                snapshot[span.file] = _sha(crate.root / span.file)
    return CheckSession(crate, result, Verifier(settings, crate, list(result.diagnostics)), snapshot)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_sources(
    settings: Settings, names: Sequence[str] = DEFAULT_ORDER, runtime: RuntimeHandle | None = None
) -> list[FixSource]:
    """Fix sources by registered name; the model source is left out when the model tier is off."""
    sources: list[FixSource] = []
    for name in names:
        if name == "model":
            if settings.model_enabled:
                sources.append(get_fix_source(name)(runtime or RuntimeHandle(settings)))
        else:
            sources.append(get_fix_source(name)())
    return sources


def fix_diagnostic(
    session: CheckSession,
    diagnostic: RustDiagnostic,
    sources: Iterable[FixSource],
    *,
    settings: Settings,
    stop_after_verified: bool = True,
    cancel: threading.Event | None = None,
    progress: Progress = no_progress,
) -> DiagnosticFixes:
    """Run the sources in order for one error; later sources run only while nothing verified yet
    (unless ``stop_after_verified`` is false)."""
    route = route_for(diagnostic)
    outcome = DiagnosticFixes(diagnostic, route)
    for source in sources:
        if outcome.fixes and stop_after_verified:
            break
        ctx = FixContext(
            settings,
            diagnostic,
            route,
            session.verifier,
            cancel or threading.Event(),
            progress,
            outcome.notes,
        )
        for verified in source.propose(ctx):
            (outcome.fixes if verified.verdict.ok else outcome.rejected).append(verified)
    return outcome


def errors_for_path(session: CheckSession, path: Path) -> list[RustDiagnostic]:
    """The session's errors, limited to the workspace member ``path`` is in (all of them outside a workspace)."""
    member = member_dir(session.crate, path)
    return [
        d
        for d in session.errors
        if member is None or (d.primary_span is not None and Path(d.primary_span.file).is_relative_to(member))
    ]


def fix_path(
    path: Path,
    settings: Settings,
    sources: Sequence[FixSource],
    *,
    max_errors: int = 20,
    stop_after_verified: bool = True,
    progress: Progress = no_progress,
) -> tuple[CheckSession, list[DiagnosticFixes]]:
    session = check_path(path, settings)
    errors = errors_for_path(session, path)
    results = []
    for i, diagnostic in enumerate(errors[:max_errors]):
        progress(f"error {i + 1}/{min(len(errors), max_errors)}: {diagnostic.code or diagnostic.message}", None)
        results.append(
            fix_diagnostic(
                session,
                diagnostic,
                sources,
                settings=settings,
                stop_after_verified=stop_after_verified,
                progress=progress,
            )
        )
    return session, results


def candidate_diff(session: CheckSession, candidate: FixCandidate) -> str:
    """The candidate as a unified diff against the user's files (paths relative to the crate root)."""
    before, after = session.verifier.apply(candidate.edits)
    return "".join(unified_diff(f, before[f], after[f]) for f in sorted(after))


def apply_fix(session: CheckSession, candidate: FixCandidate) -> list[Path]:
    """Write a verified candidate into the user's files, refusing if a file changed since the check."""
    written = []
    for file in edits_by_file(candidate.edits):
        path = session.crate.root / file
        expected = session.snapshot.get(file)
        if expected is not None and _sha(path) != expected:
            raise StaleFix(f"{file} changed after it was checked; run the fix again")
    _, after = session.verifier.apply(candidate.edits)  # refuses files outside the crate
    for file, data in after.items():
        path = session.crate.root / file
        target = path.resolve() if path.is_symlink() else path  # write through the user's link, keep the link
        try:
            write_atomic(target, data)
        except OSError as exc:
            raise FixNotWritten(f"cannot write {path}: {exc.strerror or exc}") from exc
        written.append(path)
    return written
