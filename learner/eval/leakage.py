"""Leakage guard: a benchmark case whose program was ever training data is refused, not graded.

Rust sources are compared after :func:`learner.rust.normalise.normalise_rust` (comments
stripped, whitespace removed), exactly (hash) and by containment (a training prompt that
embeds a case's program still leaks it). This is the evaluation's half; the learner's half,
never training on a benchmark program, is :mod:`learner.learn.benchmark`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learner.eval.cases import EvalCase, SkippedCase
from learner.files import JsonLinesError, read_jsonl
from learner.rust.normalise import SourceIndex

if TYPE_CHECKING:
    from learner.store import Store


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def training_index(store: Store) -> SourceIndex:
    """Every string field of every example of every training set the learner recorded."""
    index = SourceIndex()
    for record in store.training_sets():
        index.n_sets += 1
        path = Path(record.path)
        try:
            rows = [row for _, row in read_jsonl(path, skip_invalid=True)]
        except JsonLinesError as exc:
            index.problems.append(f"training set {record.id} unreadable: {exc}")
            continue
        for row in rows:
            index.n_examples += 1
            for text in _strings(row):
                if len(text) >= 8:
                    index.add(text)
    return index


@dataclass(frozen=True)
class LeakageReport:
    checked: bool
    n_sets: int
    n_examples: int
    refused: tuple[SkippedCase, ...]
    problems: tuple[str, ...] = ()

    def summary(self) -> str:
        text = (
            f"leakage check ran over {self.n_sets} training set(s), {self.n_examples} example(s); "
            f"{len(self.refused)} case(s) refused"
        )
        return text + (f" ({'; '.join(self.problems)})" if self.problems else "")

    def as_meta(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "training_sets": self.n_sets,
            "training_examples": self.n_examples,
            "refused": [s.id for s in self.refused],
            "problems": list(self.problems),
        }


def check_cases(cases: Iterable[EvalCase], index: SourceIndex) -> tuple[list[EvalCase], LeakageReport]:
    """Split ``cases`` into clean ones and refused ones (broken or fixed program seen in training)."""
    clean: list[EvalCase] = []
    refused: list[SkippedCase] = []
    for case in cases:
        leaked = [
            name for name, code in (("broken", case.broken), ("fixed", case.fixed)) if code and index.contains(code)
        ]
        if leaked:
            refused.append(
                SkippedCase(case.id, f"refused: its {' and '.join(leaked)} program appears in the training data")
            )
        else:
            clean.append(case)
    report = LeakageReport(True, index.n_sets, index.n_examples, tuple(refused), tuple(index.problems))
    return clean, report
