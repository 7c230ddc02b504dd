"""Cases per minute of the evaluation harness on the shared benchmark (run by hand).

Runs the ``rustc`` and ``model`` strategies (embedded model by default) on the first N cases
of ``../shared/bench`` through exactly what ``sleepy-coder eval`` runs, in a throw-away
SLEEPY_CODER_HOME so the user's store is untouched (the model's bf16 copy is reused from
``--cache`` when given), and prints cases/minute and seconds per case for each.

    python benchmarks/eval_speed.py [--limit 10] [--jobs 2] [--strategies rustc model] [--attempts 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--strategies", nargs="+", default=["rustc", "model"])
    parser.add_argument("--model", default=None, help="model id or folder (default: the embedded model)")
    parser.add_argument("--files", nargs="+", default=["sleepy_koans.jsonl"], help="files in the bench dir")
    parser.add_argument("--cache", default=None, help="cache dir to reuse (the prepared model lives there)")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="sleepy-eval-speed-")
    os.environ["SLEEPY_CODER_HOME"] = home
    from learner.config import Settings, bench_dir
    from learner.eval.cases import load_cases
    from learner.eval.runner import run_eval
    from learner.store import Store

    bench = bench_dir()
    if bench is None:
        sys.exit("no benchmark folder: set SLEEPY_CODER_BENCH_DIR or provide ../shared/bench")
    values: dict[str, object] = {"model": args.model} if args.model else {}
    if args.cache:
        values["cache_dir"] = args.cache
    settings = Settings.from_mapping(values)
    settings.ensure_dirs()
    cases = load_cases([bench / f for f in args.files], limit=args.limit)
    print(f"{len(cases.cases)} cases from {', '.join(args.files)}; jobs={args.jobs}; home={home}")
    with Store.open(settings) as store:
        for strategy in args.strategies:
            started = time.monotonic()
            result = run_eval(cases, strategy, settings, store, attempts=args.attempts, jobs=args.jobs)
            seconds = time.monotonic() - started
            graded = {o.case_id for o in result.outcomes}
            passed = sum(o.passed for o in result.outcomes)
            print(
                f"{strategy:12s} {len(graded)} cases in {seconds:7.1f} s = {60 * len(graded) / seconds:6.1f} cases/min "
                f"({seconds / max(1, len(graded)):.1f} s/case, incl. model load); passed {passed}; run {result.run_id}"
            )


if __name__ == "__main__":
    main()
