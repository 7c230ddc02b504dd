"""The continual-learning protocol: route families learned one after another, all re-evaluated each step.

``R[i][j]`` is the accuracy on family ``j`` after learning step ``i`` (families in the order
they were learned). Average accuracy is the mean of the final row; forgetting of family ``j``
is its best accuracy at any earlier step minus its final accuracy (families learned last have
no earlier step and are left out). These are pure functions; :func:`continual_runs` reads
the protocol's runs back from the store (each run's meta carries ``continual``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from learner.records import FALLBACK_ROUTE, NAIVE_LORA_ROUTE

if TYPE_CHECKING:
    from learner.store import Store

Matrix = list[list[float | None]]


def accuracy_matrix(steps: Sequence[Mapping[str, float]], families: Sequence[str]) -> Matrix:
    """Rows = steps (after learning family ``i``), columns = ``families``; None where not evaluated."""
    return [[step.get(f) for f in families] for step in steps]


def average_accuracy(matrix: Matrix) -> float:
    """Mean accuracy over every family evaluated after the final step."""
    if not matrix:
        raise ValueError("the accuracy matrix is empty")
    final = [v for v in matrix[-1] if v is not None]
    if not final:
        raise ValueError("the final step evaluated no family")
    return sum(final) / len(final)


def forgetting(matrix: Matrix) -> dict[int, float]:
    """Per family column ``j``: max over earlier steps of ``R[i][j]`` minus ``R[final][j]``."""
    if len(matrix) < 2:
        return {}
    final = matrix[-1]
    out: dict[int, float] = {}
    for j, last in enumerate(final):
        earlier = [row[j] for row in matrix[:-1] if j < len(row) and row[j] is not None]
        if last is None or not earlier:
            continue
        out[j] = max(earlier) - last  # type: ignore[type-var,operator]
    return out


def average_forgetting(matrix: Matrix) -> float | None:
    values = forgetting(matrix)
    return sum(values.values()) / len(values) if values else None


@dataclass(frozen=True)
class ContinualResult:
    families: tuple[str, ...]
    matrix: Matrix
    run_ids: tuple[int, ...]

    @property
    def average_accuracy(self) -> float:
        return average_accuracy(self.matrix)

    @property
    def forgetting(self) -> dict[str, float]:
        return {self.families[j]: v for j, v in forgetting(self.matrix).items()}


def continual_runs(store: Store, limit: int = 200) -> ContinualResult | None:
    """The latest protocol's matrix from runs whose meta has ``continual: {protocol, step, families}``."""
    runs = [r for r in store.latest_runs(limit=limit) if isinstance(r.meta.get("continual"), dict)]
    if not runs:
        return None
    protocol = runs[0].meta["continual"].get("protocol")
    mine = sorted(
        (r for r in runs if r.meta["continual"].get("protocol") == protocol),
        key=lambda r: int(r.meta["continual"].get("step", 0)),
    )
    families = tuple(mine[-1].meta["continual"].get("families", []))
    steps: list[dict[str, float]] = []
    for run in mine:
        per_family: dict[str, list[bool]] = {}
        for result in store.eval_results(run.id):
            per_family.setdefault(result.route, []).append(result.passed)
        steps.append({f: sum(v) / len(v) for f, v in per_family.items() if v})
    return ContinualResult(families, accuracy_matrix(steps, families), tuple(r.id for r in mine))


@dataclass(frozen=True)
class ProtocolStep:
    """Step ``index``: family ``family`` has just been learned; ``paths`` hold every adapter learned so far."""

    index: int
    family: str
    paths: tuple[str, ...]
    versions: dict[str, str]


def protocol_steps(store: Store, exclude: Sequence[str] = (NAIVE_LORA_ROUTE, FALLBACK_ROUTE)) -> list[ProtocolStep]:
    """Families in the order their first adapter was registered, each with the adapters known by then.

    A family's first registered version marks its learning step; the snapshot at that step is
    the first version of it and of every family learned before (later retrains are ignored so
    each step sees what the learner had then).
    """
    versions = sorted(
        (a for a in store.adapters() if a.route not in exclude and a.status != "rejected"),
        key=lambda a: (a.created_at, a.version),
    )
    first: dict[str, tuple[str, str]] = {}
    for adapter in versions:
        first.setdefault(adapter.route, (adapter.path, adapter.version))
    steps: list[ProtocolStep] = []
    families = list(first)
    for i, family in enumerate(families):
        learned = families[: i + 1]
        paths = tuple(dict.fromkeys(first[f][0] for f in learned))
        steps.append(ProtocolStep(i, family, paths, {f: first[f][1] for f in learned}))
    return steps
