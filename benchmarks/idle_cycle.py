"""One full idle cycle on the configured model with N accepted fixes of one route.

The fixes are synthesised with the mutation curriculum (real rustc-confirmed broken/fixed
pairs) and recorded in a fresh store exactly as the server records an accepted fix. Then one
daemon cycle runs (``run_daemon(once=True)`` without the idle wait): training, the gate on the
held-out split, the decision. Reported: wall time per stage, peak RSS of the learner process
and of a second process that maps the same weights (the server stand-in), and the route's
fix rate on the held-out fixes before and after with Wilson intervals.

    python benchmarks/idle_cycle.py --examples 32 --steps 2 --route mutability

Slow on 2 CPU cores (a training step of the 0.5B model at batch 4 x 256 tokens takes about 9-10 s):
use few steps and say so when quoting the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from learner.config import Settings
from learner.learn.examples import TrainingExample
from learner.records import Edit, FixCandidate, RustDiagnostic, Span


def seed_accepted_fixes(
    settings: Settings, examples: Iterable[TrainingExample], *, source: str = "model", kind: str = "accepted"
) -> list[str]:
    """Record curriculum examples as fixes the user accepted (or rejected); return their fix ids."""
    from learner.store import Store

    fix_ids = []
    with Store.open(settings) as store:
        for ex in examples:
            broken, fixed, file = ex.broken, ex.fixed, ex.file
            span = Span(file, 0, 1, 1, 1, 1, 1, is_primary=True)
            diag = RustDiagnostic("error", ex.rendered.splitlines()[0], ex.code, ex.rendered, (span,))
            diag_id = store.record_diagnostic(diag, crate="/synthetic", route=ex.route, context=broken)
            candidate = FixCandidate(source, "fix", (Edit(file, 0, len(broken.encode()), fixed),), ex.route)
            offer = store.record_offer(diag_id, candidate, before_text=broken, after_text=fixed, verified=True)
            store.record_outcome(offer.offer_id, kind)
            fix_ids.append(candidate.fix_id)
    return fix_ids


_SERVER_STANDIN = """
import resource, sys, time
from learner.config import Settings
from learner.model.runtime import load_runtime
rt = load_runtime(Settings(model=sys.argv[1]))
rt.generate([{"role": "user", "content": "fn main() {}"}], max_new_tokens=4)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model (default: the embedded one)")
    parser.add_argument("--route", default="mutability")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--bench-limit", type=int, default=0)
    parser.add_argument("--home", type=Path, required=True, help="a scratch SLEEPY_CODER_HOME-like folder")
    args = parser.parse_args()

    from learner.eval.gate_slice import benchmark_slice
    from learner.learn.benchmark import BenchmarkGuard
    from learner.learn.curriculum import CurriculumConfig, build_curriculum
    from learner.learn.daemon import DaemonConfig, run_daemon
    from learner.learn.gate import GateConfig, is_held_out
    from learner.store import Store

    settings = Settings(data_dir=args.home / "data", cache_dir=args.home / "cache")
    if args.model:
        settings.model = args.model
    settings.ensure_dirs()
    t0 = time.monotonic()
    made = build_curriculum(
        settings,
        CurriculumConfig(per_route=args.examples, routes=(args.route,), use_store=False),
        leakage=BenchmarkGuard.from_dirs([]),
        record=False,
    )
    rows = made.examples[args.route][: args.examples]
    fix_ids = seed_accepted_fixes(settings, rows)
    held = sum(is_held_out(f) for f in fix_ids)
    t_seed = time.monotonic() - t0

    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER_STANDIN, settings.model],
        stdout=subprocess.PIPE,
        text=True,
    )
    t1 = time.monotonic()
    config = DaemonConfig(
        require_idle=False,
        min_new_examples=1,
        steps=args.steps,
        per_route=args.examples,
        use_docs=False,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        gate=GateConfig(bench_limit=args.bench_limit, min_examples=1, bench_scorer=benchmark_slice),
    )
    (result,) = run_daemon(settings, config, once=True)
    t_cycle = time.monotonic() - t1
    learner_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    server_out, _ = server.communicate()
    server_rss_mb = int(server_out.strip().splitlines()[-1]) / 1024 if server_out.strip() else float("nan")
    with Store.open(settings) as store:
        cycle = store.cycles(limit=1)[0]
    from learner.stats import Rate

    scores = result.details.get("gate", {}).get("scores", {})
    report: dict[str, Any] = {
        "examples": len(rows),
        "held_out": held,
        "steps": args.steps,
        "batch": f"{args.batch_size}x{args.max_tokens}",
        "seed_s": round(t_seed, 1),
        "cycle_s": round(t_cycle, 1),
        "outcome": result.outcome,
        "reason": result.details.get("gate", {}).get("reason", result.details.get("error")),
        "peak_rss_mb": {
            "learner": round(learner_rss_mb),
            "server_standin": round(server_rss_mb),
            "sum": round(learner_rss_mb + server_rss_mb),
        },
        "cycle_state": cycle.state,
    }
    for name, line in scores.items():
        before, after = Rate(*line["before"]), Rate(*line["after"])
        report[f"fix_rate[{name}]"] = {"before": before.format(), "after": after.format()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
