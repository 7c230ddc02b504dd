"""The degenerate-fix guard: a change that gives up instead of fixing is refused before it is compiled.

The public experiment's grader passed ``fn main(){}``; this guard is why ours cannot. It works
on tree-sitter parses (:mod:`learner.rust.items`), so code inside comments and strings does
not count, and it runs before cargo, so a give-up costs no compile.
"""

from __future__ import annotations

from learner.records import RustDiagnostic
from learner.rust import items


def degenerate_reason(
    before: dict[str, bytes], after: dict[str, bytes], target: RustDiagnostic | None = None
) -> str | None:
    """Why a change is a give-up rather than a fix, or None if it is not degenerate.

    ``before``/``after`` map each changed file to its normalised bytes. Refused: an item
    deleted, a function body emptied, ``todo!()``/``unimplemented!()``/``#[allow(..)]``/
    ``unsafe`` added, the erroneous statement deleted, or no change at all.
    """
    if all(before[f] == after.get(f) for f in before):
        return "the candidate changes nothing"
    for file, old in before.items():
        new = after[file]
        lost = items.item_inventory(old) - items.item_inventory(new)
        if lost:
            return f"deletes {', '.join(sorted(lost))} in {file}"
        old_counts = items.function_statement_counts(old)
        new_counts = items.function_statement_counts(new)
        for name, n_old in old_counts.items():
            if n_old > 0 and new_counts.get(name, 0) == 0:
                return f"empties the body of {name} in {file}"
        added = items.risky_markers(new) - items.risky_markers(old)
        if added:
            return f"adds {', '.join(sorted(added))} in {file}"
    if target is not None and (span := target.primary_span) is not None and span.file in before:
        old, new = before[span.file], after[span.file]
        statement = items.statement_at(old, span.byte_start, span.byte_end)
        old_total = sum(items.function_statement_counts(old).values())
        new_total = sum(items.function_statement_counts(new).values())
        if statement and new_total < old_total and statement not in items.collapse_ws(new.decode("utf-8")):
            return "deletes the statement that has the error"
    return None
