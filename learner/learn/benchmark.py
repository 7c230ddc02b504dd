"""The benchmark guard: the learner never trains on a program the evaluation grades.

The evaluation's cases (``broken`` and ``fixed`` of every JSON Lines file in the benchmark
folders, :func:`learner.config.bench_dir` by default) are indexed by normalised source; a
training source, mutant or whole prompt that equals one, embeds one or is embedded in one is
dropped before it is trained on. The evaluation's own refusal check (``learner.eval.leakage``)
is the other direction: a case whose program appears in a recorded training set is not graded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from learner.config import BENCH_ENV, bench_dir
from learner.files import read_jsonl
from learner.rust.normalise import SourceIndex


@dataclass
class BenchmarkGuard:
    """The benchmark's programs, and whether a benchmark folder was found at all (``status`` says which)."""

    index: SourceIndex = field(default_factory=SourceIndex)
    available: bool = False
    status: str = "benchmark check skipped: no benchmark folder given"

    @classmethod
    def from_dirs(cls, dirs: Iterable[Path]) -> BenchmarkGuard:
        index = SourceIndex()
        files = sorted(p for folder in dirs for p in Path(folder).glob("*.jsonl"))
        for path in files:
            for _, row in read_jsonl(path, skip_invalid=True):
                index.n_examples += 1
                for key in ("broken", "fixed"):
                    if isinstance(row.get(key), str):
                        index.add(row[key])
        index.n_sets = len(files)
        where = ", ".join(sorted({str(p.parent) for p in files})) or "no case files"
        return cls(index, bool(files), f"benchmark check over {index.n_examples} cases in {where}")

    def is_benchmark(self, code: str) -> bool:
        """``code`` (a program, a region, or a whole prompt) equals, embeds or is embedded in a benchmark program."""
        return self.index.contains(code) or self.index.contained_in(code)


def default_benchmark_dirs() -> list[Path]:
    """Where evaluation cases live (``$SLEEPY_CODER_BENCH_DIR`` or the checkout's ``../shared/bench``)."""
    found = bench_dir()
    return [found] if found is not None else []


@functools.lru_cache(maxsize=4)
def _guard_for(directories: tuple[str, ...]) -> BenchmarkGuard:
    if not directories:
        return BenchmarkGuard(
            status=f"benchmark check skipped: no benchmark folder (set {BENCH_ENV} or provide ../shared/bench)"
        )
    return BenchmarkGuard.from_dirs(Path(d) for d in directories)


def default_guard() -> BenchmarkGuard:
    """The guard over :func:`default_benchmark_dirs` (read once per folder and process)."""
    return _guard_for(tuple(str(d) for d in default_benchmark_dirs()))


def is_benchmark_source(code: str) -> bool:
    """True if ``code`` matches a case of the default benchmark (False when there is none: see ``.status``)."""
    return default_guard().is_benchmark(code)
