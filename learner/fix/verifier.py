"""Compile a candidate fix in a scratch copy of the crate and judge it.

User code is never touched here: the crate is mirrored into a persistent scratch folder
(with its own persistent target dir, so each check is incremental), the candidate's edits
are written there, cargo checks it, and the files are put back. A candidate is offered only
if the targeted error is gone, no new error appears, and it is not degenerate (see
:func:`learner.fix.degenerate.degenerate_reason`).
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

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
    """Judges candidates for one crate against the errors it had before (the baseline).

    Several candidates are checked at once in as many scratch copies (``settings.verify_jobs``),
    each with its own persistent target dir: cargo checks one small crate on about one core, so
    on two cores two candidates cost little more than one.
    """

    def __init__(self, settings: Settings, crate: CrateRef, baseline: list[RustDiagnostic]) -> None:
        self.settings = settings
        self.crate = crate
        self.baseline = baseline
        self.scratch = self._scratch(0)
        self._slots = [self.scratch]
        self._slots_lock = threading.Lock()

    def _scratch(self, index: int) -> ScratchCrate:
        suffix = f"-{index}" if index else ""
        return ScratchCrate(
            self.crate,
            self.settings.scratch_dir / f"{self.crate.key}{suffix}",
            self.settings.targets_dir / f"{self.crate.key}-scratch{suffix}",
            offline=not self.settings.cargo_network,
        )

    def _slot(self, index: int) -> ScratchCrate:
        with self._slots_lock:
            while len(self._slots) <= index:
                self._slots.append(self._scratch(len(self._slots)))
            return self._slots[index]

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

    def verify(self, candidate: FixCandidate, target: RustDiagnostic | None, *, slot: int = 0) -> Verdict:
        """Check ``candidate`` in scratch copy number ``slot`` and judge it against the baseline."""
        try:
            before, after = self.apply(candidate.edits)
        except SleepyCoderError as exc:  # OverlappingEdits, SourceUnreadable
            return Verdict(False, f"cannot apply: {exc}")
        reason = degenerate_reason(before, after, target)
        if reason is not None:
            return Verdict(False, f"degenerate: {reason}")
        scratch = self._slot(slot)
        with scratch.locked():
            scratch.sync()
            with scratch.changed(after):
                result = scratch.check(self.settings.check_timeout_s)
        ok, why, new_errors = judge(self.baseline, list(result.diagnostics), target)
        remaining = tuple(d.code or "no-code" for d in result.errors)
        return Verdict(ok, why, remaining, new_errors, result.seconds)

    def verify_all(
        self,
        candidates: Sequence[FixCandidate],
        target: RustDiagnostic | None,
        *,
        cancel: threading.Event | None = None,
    ) -> list[Verdict | None]:
        """Verdicts for ``candidates`` in order, checked ``settings.verify_jobs`` at a time.

        A candidate not started before ``cancel`` was set gets None.
        """
        jobs = max(1, min(self.settings.verify_jobs, len(candidates)))
        free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(jobs):
            free.put(index)

        def one(candidate: FixCandidate) -> Verdict | None:
            if cancel is not None and cancel.is_set():
                return None
            slot = free.get()
            try:
                return self.verify(candidate, target, slot=slot)
            finally:
                free.put(slot)

        if jobs == 1:
            return [one(c) for c in candidates]
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="verify") as pool:
            return list(pool.map(one, candidates))
