"""The gate's benchmark slices: a target route's first benchmark cases through the evaluation harness.

The promotion gate (:mod:`learner.learn.gate`) takes this as its ``bench_scorer`` so that a
candidate adapter set is also checked on cases no user wrote; the learner itself never imports
the evaluation (the command line joins the two).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

from learner.config import Settings
from learner.eval.cases import load_cases
from learner.eval.runner import run_eval
from learner.fix.router import route_for_code
from learner.learn.benchmark import default_benchmark_dirs
from learner.learn.gate import GateConfig
from learner.model.adapters import AdapterSelection
from learner.model.handle import RuntimeHandle
from learner.stats import Rate

if TYPE_CHECKING:
    from learner.model.runtime import ModelRuntime
    from learner.store import Store


class _Loaded:
    """A RuntimeHandle-shaped wrapper around a runtime that is already loaded (the eval runner wants a handle)."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime
        self.loaded = runtime
        self.state = "ready"
        #: The learner's own model: adapter files load into it (never a backend server's).
        self.remote = False
        self.available = True

    def get(self) -> ModelRuntime:
        return self.runtime


def benchmark_slice(
    settings: Settings,
    store: Store,
    runtime: ModelRuntime,
    route: str,
    paths: Sequence[Path],
    config: GateConfig,
) -> Rate | None:
    """The route's first ``bench_limit`` benchmark cases through the eval harness (one attempt)."""

    dirs = config.bench_dirs if config.bench_dirs is not None else tuple(default_benchmark_dirs())
    files = sorted(p for d in dirs for p in Path(d).glob("*.jsonl"))
    if config.bench_limit <= 0 or not files:
        return None
    case_set = load_cases(files)
    cases = tuple(c for c in case_set.cases if route_for_code(c.primary_code).name == route)[: config.bench_limit]
    if not cases:
        return None
    strategy = "routed" if paths else "model+hints"
    selection = AdapterSelection(tuple(paths), {"gate": ",".join(str(p) for p in paths)}) if paths else None
    result = run_eval(
        dataclasses.replace(case_set, cases=cases),
        strategy,
        settings,
        store,
        attempts=1,
        jobs=1,
        runtime=cast(RuntimeHandle, _Loaded(runtime)),
        adapters=selection,
        meta={"gate": True, "route": route},
    )
    return Rate(sum(o.passed for o in result.outcomes), len(result.outcomes))
