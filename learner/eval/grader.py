"""Grading a case's final program: a fresh real compile, the case's codes gone, and no give-up fix.

PASS needs all three: the program compiles without errors as the case's crate type, none of
the case's error codes is reported, and the change is not degenerate by the same guard the
verifier uses (:func:`learner.fix.verifier.degenerate_reason`), so replacing everything with
``fn main() {}`` fails. Where a reference fix exists, exact match after rustfmt and the edit
size (changed lines) against the reference's are reported too; they never decide PASS.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from dataclasses import dataclass

from learner.config import Settings
from learner.eval.cases import EvalCase
from learner.eval.sandbox import materialise
from learner.fix.degenerate import degenerate_reason
from learner.records import RustDiagnostic
from learner.rust.check import check
from learner.rust.crate import CrateRef, locate_crate
from learner.rust.items import collapse_ws


@dataclass(frozen=True)
class Grade:
    passed: bool
    reason: str
    remaining_codes: tuple[str, ...] = ()
    exact_match: bool | None = None
    edit_size: int | None = None
    ref_edit_size: int | None = None


def changed_lines(before: str, after: str) -> int:
    """Lines removed plus lines added between two programs (difflib's view of the edit size)."""
    count = 0
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith(("- ", "+ ")):
            count += 1
    return count


def rustfmt(code: str, edition: str = "2021", timeout_s: float = 30.0) -> str | None:
    """The program as rustfmt prints it, or None when rustfmt is missing or cannot parse it."""
    exe = shutil.which("rustfmt")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--edition", edition, "--emit", "stdout"],
            input=code,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout


def same_after_rustfmt(candidate: str, reference: str, edition: str = "2021") -> bool:
    """Exact match after formatting both; when rustfmt cannot format one, compare without whitespace."""
    a, b = rustfmt(candidate, edition), rustfmt(reference, edition)
    if a is not None and b is not None:
        return a == b
    return collapse_ws(candidate) == collapse_ws(reference)


def compile_program(settings: Settings, case: EvalCase, program: str) -> list[RustDiagnostic]:
    """Errors of ``program`` built from scratch as the case's crate (its own folder and target dir)."""
    root = materialise(settings, case, program, purpose="grade")
    crate: CrateRef = locate_crate(root)
    result = check(crate, settings.targets_dir / f"grade-{crate.key}", timeout_s=settings.check_timeout_s)
    return result.errors


def primary_error(settings: Settings, case: EvalCase) -> RustDiagnostic | None:
    """The broken program's first error with the case's primary code (else its first error)."""
    errors = compile_program(settings, case, case.broken)
    return next((d for d in errors if d.code == case.primary_code), errors[0] if errors else None)


def grade(settings: Settings, case: EvalCase, final_program: str, target: RustDiagnostic | None = None) -> Grade:
    """Grade ``final_program`` for ``case``.

    ``target`` is the case's primary error as first reported (the runner has it); without it
    the broken program is compiled here to find it, so deleting the erroneous statement is
    caught either way.
    """
    if target is None:
        target = primary_error(settings, case)
    ref_size = changed_lines(case.broken, case.fixed) if case.fixed is not None else None
    size = changed_lines(case.broken, final_program)
    exact = same_after_rustfmt(final_program, case.fixed, case.edition) if case.fixed is not None else None
    errors = compile_program(settings, case, final_program)
    remaining = tuple(sorted({d.code or "no-code" for d in errors}))

    def result(passed: bool, reason: str) -> Grade:
        return Grade(passed, reason, remaining, exact, size, ref_size)

    if errors:
        still = [c for c in case.error_codes if c in remaining]
        if still:
            why = f"error {', '.join(still)} still reported"
        else:
            first = errors[0]
            why = f"does not compile: error{f' {first.code}' if first.code else ''}: {first.message}"
        return result(False, why)
    file = case.program_file
    degenerate = degenerate_reason({file: case.broken.encode("utf-8")}, {file: final_program.encode("utf-8")}, target)
    if degenerate is not None:
        return result(False, f"degenerate fix: {degenerate}")
    return result(True, "compiles; the case's errors are gone")
