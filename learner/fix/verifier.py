"""Compile a candidate fix in a scratch copy of the crate and judge it.

User code is never touched here: the crate is mirrored into a persistent scratch folder
(with its own persistent target dir, so each check is incremental), the candidate's edits
are written there, cargo checks it, and the files are put back. A candidate is offered only
if the targeted error is gone, no new error appears, and it is not degenerate (see
:func:`learner.fix.degenerate.degenerate_reason`).
"""

from __future__ import annotations

from collections import Counter

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.fix.degenerate import degenerate_reason
from learner.fix.router import BORROWCK_ROUTES, route_for_code
from learner.records import Edit, FixCandidate, RustDiagnostic, Verdict
from learner.rust.crate import CrateRef
from learner.rust.scratch import ScratchCrate, refuse_outside
from learner.rust.source import apply_edits, edits_by_file, read_source


def _signature(diag: RustDiagnostic) -> tuple[str | None, str]:
    return (diag.code, diag.message)


def judge(
    baseline: list[RustDiagnostic], after: list[RustDiagnostic], target: RustDiagnostic | None
) -> tuple[bool, str, tuple[RustDiagnostic, ...]]:
    """Compare errors before and after a candidate: (ok, reason, new errors).

    Errors are compared as (code, message) multisets because positions move when code is
    edited. Borrow-checker errors that appear only after every type error is gone were hidden
    by rustc's phase order, not introduced by the fix, and are not held against it.
    """
    before = Counter(_signature(d) for d in baseline if d.is_error)
    now = Counter(_signature(d) for d in after if d.is_error)
    hidden_phase = any(route_for_code(c).name not in BORROWCK_ROUTES for c, _ in before)
    new_errors: list[RustDiagnostic] = []
    extra = now - before
    for diag in after:
        sig = _signature(diag)
        if diag.is_error and extra.get(sig, 0) > 0:
            extra[sig] -= 1
            if hidden_phase and route_for_code(diag.code).name in BORROWCK_ROUTES:
                continue
            new_errors.append(diag)
    if target is not None:
        sig = _signature(target)
        if now.get(sig, 0) >= before.get(sig, 0) and before.get(sig, 0) > 0:
            return False, f"error {target.code or ''} is still reported".replace("  ", " "), tuple(new_errors)
    if new_errors:
        first = new_errors[0]
        return (
            False,
            f"introduces error {first.code or ''}: {first.message}".replace("  ", " "),
            tuple(new_errors),
        )
    return True, "compiles past the error" if any(d.is_error for d in after) else "compiles", ()


class Verifier:
    """Judges candidates for one crate against the errors it had before (the baseline)."""

    def __init__(self, settings: Settings, crate: CrateRef, baseline: list[RustDiagnostic]) -> None:
        self.settings = settings
        self.crate = crate
        self.baseline = baseline
        self.scratch = ScratchCrate(
            crate,
            settings.scratch_dir / crate.key,
            settings.targets_dir / f"{crate.key}-scratch",
            offline=not settings.cargo_network,
        )

    def apply(self, edits: tuple[Edit, ...]) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """(before, after) bytes of each file the edits touch, read from the user's tree."""
        before: dict[str, bytes] = {}
        after: dict[str, bytes] = {}
        by_file = edits_by_file(edits)
        refuse_outside(self.crate.root, by_file, follow_links=False)
        for file, file_edits in by_file.items():
            source = read_source(self.crate.root / file)
            before[file] = source.data
            after[file] = apply_edits(source.data, file_edits, source.crlf)
        return before, after

    def verify(self, candidate: FixCandidate, target: RustDiagnostic | None) -> Verdict:
        try:
            before, after = self.apply(candidate.edits)
        except SleepyCoderError as exc:  # OverlappingEdits, SourceUnreadable
            return Verdict(False, f"cannot apply: {exc}")
        reason = degenerate_reason(before, after, target)
        if reason is not None:
            return Verdict(False, f"degenerate: {reason}")
        with self.scratch.locked():
            self.scratch.sync()
            with self.scratch.changed(after):
                result = self.scratch.check(self.settings.check_timeout_s)
        ok, why, new_errors = judge(self.baseline, list(result.diagnostics), target)
        remaining = tuple(d.code or "no-code" for d in result.errors)
        return Verdict(ok, why, remaining, new_errors, result.seconds)
