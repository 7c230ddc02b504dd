"""Compile a candidate fix in a scratch copy of the crate and judge it.

User code is never touched here: the crate is mirrored into a persistent scratch folder
(with its own persistent target dir, so each check is incremental), the candidate's edits
are written there, cargo checks it, and the files are put back. A candidate is offered only
if the targeted error is gone, no new error appears, and it is not degenerate (see
:func:`learner.fix.degenerate.degenerate_reason`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.files import write_with_new_mtime
from learner.fix.degenerate import degenerate_reason
from learner.fix.router import BORROWCK_ROUTES, route_for_code
from learner.records import Edit, FixCandidate, RustDiagnostic, Verdict
from learner.rust.check import CheckResult, check
from learner.rust.crate import CrateRef
from learner.rust.source import apply_edits, edits_by_file, read_source

_SKIP_DIRS = frozenset({"target", ".git", "node_modules", ".hg", ".svn", ".venv", "__pycache__"})


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


class ScratchCrate:
    """A mirror of a crate under the cache dir where candidates are applied and checked.

    One candidate at a time per crate: a thread lock within the process and a file lock
    across processes (the editor's server and a CLI run may verify the same crate).
    """

    def __init__(self, settings: Settings, crate: CrateRef) -> None:
        self.settings = settings
        self.source = crate
        self.path = settings.scratch_dir / crate.key
        self.target_dir = settings.targets_dir / f"{crate.key}-scratch"
        manifest = None
        if crate.manifest is not None:
            manifest = self.path / crate.manifest.relative_to(crate.root)
        self.crate = replace(crate, root=self.path, manifest=manifest)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.parent / f"{self.path.name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def sync(self) -> None:
        """Make the mirror equal to the user's tree (copying only what changed)."""
        src_root = self.source.root
        wanted: set[Path] = set()
        if self.source.is_single_file:
            assert self.source.single_file is not None
            files = [src_root / self.source.single_file]
        else:
            files = list(_crate_files(src_root))
        for src in files:
            rel = src.relative_to(src_root)
            wanted.add(rel)
            dst = self.path / rel
            try:
                # Compare contents, not (size, mtime): a same-size edit within one second must
                # still reach the mirror. Source files are small; reading both is cheap.
                if dst.is_file() and dst.stat().st_size == src.stat().st_size and dst.read_bytes() == src.read_bytes():
                    continue
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            except OSError:
                continue
        for dst in list(_crate_files(self.path)):
            if dst.relative_to(self.path) not in wanted:
                dst.unlink(missing_ok=True)

    def check(self, timeout_s: float) -> CheckResult:
        return check(self.crate, self.target_dir, timeout_s=timeout_s)


def _crate_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in files:
            if not name.endswith(".lock") or name == "Cargo.lock":
                yield Path(folder) / name


class Verifier:
    """Judges candidates for one crate against the errors it had before (the baseline)."""

    def __init__(self, settings: Settings, crate: CrateRef, baseline: list[RustDiagnostic]) -> None:
        self.settings = settings
        self.crate = crate
        self.baseline = baseline
        self.scratch = ScratchCrate(settings, crate)

    def apply(self, edits: tuple[Edit, ...]) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """(before, after) bytes of each file the edits touch, read from the user's tree."""
        before: dict[str, bytes] = {}
        after: dict[str, bytes] = {}
        for file, file_edits in edits_by_file(edits).items():
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
            originals = {f: (self.scratch.path / f).read_bytes() for f in after}
            try:
                for file, data in after.items():
                    write_with_new_mtime(self.scratch.path / file, data)
                result = self.scratch.check(self.settings.check_timeout_s)
            finally:
                for file, data in originals.items():
                    write_with_new_mtime(self.scratch.path / file, data)
        ok, why, new_errors = judge(self.baseline, list(result.diagnostics), target)
        remaining = tuple(d.code or "no-code" for d in result.errors)
        return Verdict(ok, why, remaining, new_errors, result.seconds)
