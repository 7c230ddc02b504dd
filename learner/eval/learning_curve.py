"""The learning curve a user would look at: per route, what each night's candidate scored, and
which nights promoted one.

Read from the gate's own records (each candidate's ``metrics["gate"]``, written by
:func:`learner.learn.gate.record_decision`), so the curve shows the evidence the decisions were
made on, not a separate measurement: a route's held-out accepted fixes where it has any, else its
held-out practice mutations (``practice:<route>``). Pure functions over registry records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from learner.learn.practice import PRACTICE_PREFIX
from learner.stats import Rate
from learner.store import AdapterVersion


@dataclass(frozen=True)
class CurvePoint:
    """One night for one route: the candidate's score, the score it was compared with, the outcome."""

    when: datetime
    version: str
    before: Rate
    after: Rate
    promoted: bool
    #: ``held-out fixes`` or ``practice``: what the score counts.
    evidence: str


def _rate(pair: object) -> Rate | None:
    if isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(v, int) for v in pair):
        return Rate(pair[0], pair[1])
    return None


def learning_curves(adapters: Iterable[AdapterVersion]) -> dict[str, list[CurvePoint]]:
    """Per target route, one point per gated candidate, oldest first."""
    curves: dict[str, list[CurvePoint]] = {}
    for adapter in sorted(adapters, key=lambda a: a.created_at):
        gate = adapter.metrics.get("gate")
        if not isinstance(gate, dict) or not isinstance(gate.get("scores"), dict):
            continue
        scores = gate["scores"]
        for route in gate.get("targets") or []:
            for name, evidence in ((route, "held-out fixes"), (PRACTICE_PREFIX + route, "practice")):
                line = scores.get(name)
                if not isinstance(line, dict):
                    continue
                before, after = _rate(line.get("before")), _rate(line.get("after"))
                if before is None or after is None or after.n == 0:
                    continue
                point = CurvePoint(
                    adapter.created_at, adapter.version, before, after, bool(gate.get("promote")), evidence
                )
                curves.setdefault(route, []).append(point)
                break
    return curves
