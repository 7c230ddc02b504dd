"""What one learning cycle did, in words: one sentence for the editor and a Markdown report file.

Why apart from the daemon: the editor's server, ``learn --daemon`` and the CLI all say what a
cycle did; they read the same finished :class:`~learner.store.LearnerCycle` row, so the words
live here once, as pure functions of that row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from learner.config import Settings
from learner.files import write_atomic
from learner.store import LearnerCycle

#: The newest cycle's report, which ``sleepy-coder.openReport`` opens; older ones stay beside it.
LATEST_REPORT = "latest-cycle.md"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{'es' if word.endswith(('x', 's')) else 's'}"


def describe_cycle(outcome: str | None, details: dict[str, Any]) -> str:
    """One sentence: ``nothing to learn: 0 new accepted fixes``, ``promoted v3 for borrow``..."""
    new = details.get("new_examples") or {}
    total = sum(int(n) for n in new.values()) if isinstance(new, dict) else 0
    targets = ", ".join(details.get("targets") or []) or "no route"
    candidate = details.get("candidate", "the candidate")
    if outcome == "nothing-to-learn":
        per_route = ", ".join(f"{route}: {n}" for route, n in sorted(new.items())) if new else ""
        return f"nothing to learn: {_plural(total, 'new accepted fix')}" + (f" ({per_route})" if per_route else "")
    if outcome == "promoted":
        return f"promoted {candidate} for {targets}"
    if outcome == "rejected":
        reason = (details.get("gate") or {}).get("reason", "it did not beat the active adapters")
        return f"trained {candidate} for {targets}; the gate kept the current adapters: {reason}"
    if outcome == "paused":
        return f"paused: {details.get('paused', 'the machine is in use')}"
    if outcome == "failed":
        return f"failed: {details.get('error', 'see the learner log')}"
    if outcome == "interrupted":
        return "interrupted (the learner stopped mid-cycle); the next cycle resumes it"
    return outcome or "still running"


def report_markdown(cycle: LearnerCycle) -> str:
    """The cycle's report: what it found, trained and decided, for a person to read."""
    details = cycle.details
    lines = [
        f"# Learning cycle {cycle.id}",
        "",
        f"- Started: {cycle.started_at:%Y-%m-%d %H:%M:%S} UTC",
        f"- Finished: {cycle.finished_at:%Y-%m-%d %H:%M:%S} UTC" if cycle.finished_at else "- Finished: not yet",
        f"- Result: {describe_cycle(cycle.outcome, details)}",
    ]
    new = details.get("new_examples") or {}
    if new:
        lines += ["", "## New accepted fixes per route", "", "| route | new |", "| --- | --- |"]
        lines += [f"| {route} | {n} |" for route, n in sorted(new.items())]
    gate = details.get("gate") or {}
    if gate.get("scores"):
        lines += [
            "",
            "## Gate",
            "",
            f"{gate.get('reason', '')}",
            "",
            "| slice | before | after |",
            "| --- | --- | --- |",
        ]
        for name, score in sorted(gate["scores"].items()):
            (b_ok, b_n), (a_ok, a_n) = score["before"], score["after"]
            lines.append(f"| {name} | {b_ok}/{b_n} | {a_ok}/{a_n} |")
    deleted = (details.get("retention") or {}).get("deleted") or {}
    if any(deleted.values()):
        lines += ["", "Retention deleted: " + ", ".join(f"{k} {v}" for k, v in sorted(deleted.items()) if v)]
    return "\n".join(lines) + "\n"


def write_cycle_report(settings: Settings, cycle: LearnerCycle) -> Path:
    """Write ``cycles/cycle-<id>.md`` and ``latest-cycle.md`` under the reports folder; return the latter."""
    text = report_markdown(cycle)
    folder = settings.reports_dir / "cycles"
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"cycle-{cycle.id}.md", text.encode())
    latest = settings.reports_dir / LATEST_REPORT
    write_atomic(latest, text.encode())
    return latest


def newest_report(settings: Settings) -> Path | None:
    """The newest report in the reports folder: a cycle's, or ``eval report``'s summary."""
    found = [p for p in (settings.reports_dir / LATEST_REPORT, settings.reports_dir / "summary.md") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
