"""Leakage guard: benchmark cases must never have been training data, and vice versa.

Rust sources are compared after :func:`normalise_rust` (comments stripped, whitespace
removed), exactly (hash) and by containment (a training prompt that embeds a case's program
still leaks it). The eval refuses leaked cases; :func:`is_benchmark_source` lets the
curriculum builder drop anything that matches the benchmark before it trains.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learner.eval.cases import EvalCase, SkippedCase

if TYPE_CHECKING:
    from learner.store import Store

BENCH_ENV = "SLEEPY_CODER_BENCH_DIR"
#: Normalised sources shorter than this are too generic (``fnmain(){}``) to call a containment a leak.
MIN_CONTAINED_CHARS = 30
_TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'|\s+|.', re.S)


def normalise_rust(code: str) -> str:
    """The program without comments or whitespace (string and char literals kept verbatim)."""
    out = []
    for match in _TOKEN.finditer(code):
        token = match.group(0)
        if token.startswith(("//", "/*")) or token.isspace():
            continue
        out.append(token)
    return "".join(out)


def source_hash(code: str) -> str:
    return hashlib.sha256(normalise_rust(code).encode("utf-8")).hexdigest()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass
class SourceIndex:
    """Normalised sources (exact hashes plus full texts for containment) and what they came from."""

    hashes: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)
    n_sets: int = 0
    n_examples: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, code: str) -> None:
        norm = normalise_rust(code)
        if not norm:
            return
        self.hashes.add(hashlib.sha256(norm.encode("utf-8")).hexdigest())
        self.texts.append(norm)

    def contains(self, code: str) -> bool:
        """True if ``code`` is in the index exactly or embedded in one of its texts."""
        norm = normalise_rust(code)
        if not norm:
            return False
        if hashlib.sha256(norm.encode("utf-8")).hexdigest() in self.hashes:
            return True
        return len(norm) >= MIN_CONTAINED_CHARS and any(norm in text for text in self.texts)

    def contained_in(self, code: str) -> bool:
        """True if one of the index's texts is embedded in ``code`` (for whole training prompts)."""
        norm = normalise_rust(code)
        if hashlib.sha256(norm.encode("utf-8")).hexdigest() in self.hashes:
            return True
        return any(len(text) >= MIN_CONTAINED_CHARS and text in norm for text in self.texts)


def training_index(store: Store) -> SourceIndex:
    """Every string field of every example of every training set the learner recorded."""
    index = SourceIndex()
    for record in store.training_sets():
        index.n_sets += 1
        path = Path(record.path)
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            index.problems.append(f"training set {record.id} ({path}) unreadable: {exc.strerror or exc}")
            continue
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
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


# ----------------------------------------------------------------------------- benchmark side


def bench_dir() -> Path | None:
    """``$SLEEPY_CODER_BENCH_DIR``, else ``../shared/bench`` beside the repository; None if absent."""
    env = os.environ.get(BENCH_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2].parent / "shared" / "bench")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class BenchmarkIndex:
    index: SourceIndex
    available: bool
    status: str


@functools.lru_cache(maxsize=4)
def _benchmark_index(directory: str | None) -> BenchmarkIndex:
    if directory is None:
        return BenchmarkIndex(
            SourceIndex(),
            False,
            f"benchmark check skipped: no benchmark folder (set {BENCH_ENV} or provide ../shared/bench)",
        )
    index = SourceIndex()
    files = sorted(Path(directory).glob("*.jsonl"))
    for path in files:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if not isinstance(row, dict):
                continue
            index.n_examples += 1
            for key in ("broken", "fixed"):
                if isinstance(row.get(key), str):
                    index.add(row[key])
    index.n_sets = len(files)
    return BenchmarkIndex(index, True, f"benchmark check over {index.n_examples} cases in {directory}")


def benchmark_index() -> BenchmarkIndex:
    found = bench_dir()
    return _benchmark_index(str(found) if found else None)


def is_benchmark_source(code: str) -> bool:
    """True if ``code`` (a program, a region, or a whole prompt) matches a benchmark case's source.

    Matches are exact after normalisation, a benchmark program embedded in ``code``, or ``code``
    embedded in a benchmark program. Without a benchmark folder it returns False; check
    :func:`benchmark_index` ``.available``/``.status`` to say so.
    """
    bench = benchmark_index()
    if not bench.available:
        return False
    return bench.index.contains(code) or bench.index.contained_in(code)
