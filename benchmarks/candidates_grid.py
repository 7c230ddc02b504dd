"""Candidates per error (N) x candidate seeds, on one model: pass rate, beyond rustc, latency (run by hand).

    python benchmarks/candidates_grid.py --cases ../shared/bench/sleepy_koans.jsonl \
        --cases ../shared/bench/rustc_explain.jsonl --candidates 1 4 8 --candidate-seeds 3 \
        [--model embedded:qwen2.5-coder-1.5b-instruct] [--strategy pipeline] [--attempts 1] \
        [--answer-format item] [--seeds 1 2] [--json grid.json]

Each (N, seed) is one ordinary ``eval run`` recorded in the store (``eval compare`` works on
them). The first candidate is always the greedy answer, so N = 1 is deterministic and runs once;
for N > 1 each seed draws a different set of N - 1 samples (``candidate_seed``). Figures:

- pass: cases fixed (first attempt, or within ``--attempts``), with the Wilson 95% interval;
  across seeds, the mean and the range.
- beyond rustc: the same on the cases the ``rustc`` strategy does not fix (run once here, or
  given with ``--rustc-run``).
- latency: each case's wall time through the pipeline (fix steps, not grading), p50 and p95;
  and over the cases fixed, the time to their verified fix (the pipeline stops at the first
  one: the greedy answer, or the batch after it), the issue's "first verified fix" figure.
- paired: exact McNemar of each run against the N = 1 run, cases flipped each way.
- peak RSS of this process (the model loaded once for the whole grid).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import Settings
from learner.eval.cases import load_cases
from learner.eval.runner import run_eval
from learner.model.handle import RuntimeHandle
from learner.stats import paired_comparison, percentile, wilson_interval
from learner.store import Store


def passed_by_case(store: Store, run_id: int) -> dict[str, bool]:
    return {r.case_id: r.passed for r in store.eval_results(run_id) if r.seed == 0}


def summary(store: Store, run_id: int, reference: int | None, rustc_fails: set[str]) -> dict[str, Any]:
    results = [r for r in store.eval_results(run_id) if r.seed == 0]
    passed = sum(r.passed for r in results)
    beyond = [r for r in results if r.case_id in rustc_fails]
    fixed = [r.latency_s for r in results if r.passed]
    row: dict[str, Any] = {
        "run": run_id,
        "cases": len(results),
        "passed": passed,
        "interval": wilson_interval(passed, len(results)),
        "beyond_rustc": (sum(r.passed for r in beyond), len(beyond)),
        "latency_p50": percentile([r.latency_s for r in results], 0.5),
        "latency_p95": percentile([r.latency_s for r in results], 0.95),
        "fixed_p50": percentile(fixed, 0.5),
        "fixed_p95": percentile(fixed, 0.95),
    }
    if reference is not None and reference != run_id:
        cmp = paired_comparison(passed_by_case(store, reference), passed_by_case(store, run_id))
        row["paired"] = {"gained": len(cmp.only_b), "lost": len(cmp.only_a), "p": cmp.p_value}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, action="append", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--strategy", default="pipeline")
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--candidate-seeds", type=int, default=3)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="these candidate seeds instead of 0..candidate-seeds-1"
    )
    parser.add_argument("--attempts", type=int, default=1)
    parser.add_argument("--answer-format", default=None)
    parser.add_argument("--rustc-run", type=int, default=None, help="a recorded rustc run on the same cases")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    settings = Settings()
    if args.model:
        settings = replace(settings, model=args.model)
    if args.answer_format:
        settings = replace(settings, answer_format=args.answer_format)
    case_set = load_cases(args.cases)
    runtime = RuntimeHandle(settings)
    rows: list[dict[str, Any]] = []

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rustc_run: int | None = args.rustc_run
    with Store.open(settings) as store:
        if rustc_run is None:
            rustc_run = run_eval(case_set, "rustc", settings, store, jobs=args.jobs).run_id
            log(f"rustc run {rustc_run}")
        rustc_fails = {case for case, ok in passed_by_case(store, rustc_run).items() if not ok}
        reference: int | None = None
        for n in args.candidates:
            seeds = args.seeds if args.seeds is not None else list(range(args.candidate_seeds))
            for seed in [0] if n == 1 else seeds:
                run_settings = replace(settings, candidates=n, candidate_seed=seed)
                result = run_eval(
                    case_set,
                    args.strategy,
                    run_settings,
                    store,
                    attempts=args.attempts,
                    jobs=args.jobs,
                    runtime=runtime,
                    meta={"grid": {"candidates": n, "candidate_seed": seed, "rustc_run": rustc_run}},
                )
                if reference is None:
                    reference = result.run_id
                row = {"candidates": n, "seed": seed, **summary(store, result.run_id, reference, rustc_fails)}
                rows.append(row)
                log(json.dumps(row))
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"model {settings.model}, strategy {args.strategy}, attempts {args.attempts}, peak RSS {rss_gb:.1f} GB")
    print(
        "| N | seed | run | pass | 95% CI | beyond rustc | case p50 / p95 s | fixed p50 / p95 s "
        "| vs N=1 (gained/lost, p) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        lo, hi = r["interval"]
        b_ok, b_n = r["beyond_rustc"]
        paired = r.get("paired")
        versus = f"+{paired['gained']}/-{paired['lost']}, p={paired['p']:.3g}" if paired else "-"
        print(
            f"| {r['candidates']} | {r['seed']} | {r['run']} | {r['passed']}/{r['cases']} | {lo:.0%}-{hi:.0%} "
            f"| {b_ok}/{b_n} | {r['latency_p50']:.1f} / {r['latency_p95']:.1f} "
            f"| {r['fixed_p50']:.1f} / {r['fixed_p95']:.1f} | {versus} |"
        )
    for n in args.candidates:
        rates = [r["passed"] / r["cases"] for r in rows if r["candidates"] == n and r["cases"]]
        if len(rates) > 1:
            spread = f"range {min(rates):.1%}-{max(rates):.1%}"
            print(f"N={n}: mean {statistics.mean(rates):.1%} over {len(rates)} seeds ({spread})")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "peak_rss_gb": rss_gb, "rustc_run": rustc_run}, indent=2))


if __name__ == "__main__":
    main()
