"""What N candidates cost against one: one prefill, N-wide decoding (run by hand).

The issue's target is "best-of-8 costs <= 2x one sample". This measures, on the realistic
requests of ``generation_speed.py`` (a ~40-line file, one compile error, rustc's rendering):

- one sampled answer (``generate_batch`` with n = 1: the same code path without a batch),
- the greedy answer with prompt lookup (what the pipeline asks first, ``generate``),
- ``generate_batch`` with n = 4 and n = 8 (the greedy row first, the rest sampled),

each ``--reps`` times, and prints per case the median wall time, the ratio to one sample, the
tokens written per second over the batch, and this process's peak RSS.

    python benchmarks/batch_cost.py [--reps 3] [--max-new-tokens 512] [--sizes 4 8]
        [--model embedded:qwen2.5-coder-0.5b-instruct]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation_speed import CASES, messages_for  # the same requests, one copy

from learner.config import Settings
from learner.model.runtime import ModelRuntime, load_runtime


@dataclass(frozen=True)
class Timing:
    seconds: float
    tokens: int


def time_batch(runtime: ModelRuntime, messages: list[dict[str, str]], n: int, max_new: int, seed: int) -> Timing:
    started = time.perf_counter()
    answers = runtime.generate_batch(messages, n, max_new_tokens=max_new, seed=seed, greedy_first=n > 1)
    return Timing(time.perf_counter() - started, sum(a.new_tokens for a in answers))


def time_greedy(runtime: ModelRuntime, messages: list[dict[str, str]], max_new: int) -> Timing:
    started = time.perf_counter()
    answer = runtime.generate(messages, max_new_tokens=max_new, prompt_lookup=True)
    return Timing(time.perf_counter() - started, answer.new_tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--model", default=None, help="model id or folder (default: the embedded model)")
    args = parser.parse_args()

    settings = Settings() if args.model is None else replace(Settings(), model=args.model)
    runtime = load_runtime(settings)
    print(f"model {settings.model}, {args.reps} reps, max {args.max_new_tokens} new tokens")
    print("| case | mode | median s (min-max) | x one sample | tokens/s |")
    print("| --- | --- | --- | --- | --- |")
    ratios: dict[str, list[float]] = {}
    for name, source in CASES.items():
        messages = messages_for(source)
        one: float | None = None
        for mode, size in [("one sample", 1), ("greedy + prompt lookup", 0)] + [
            (f"batch of {n}", n) for n in args.sizes
        ]:
            timings = [
                time_greedy(runtime, messages, args.max_new_tokens)
                if size == 0
                else time_batch(runtime, messages, size, args.max_new_tokens, rep)
                for rep in range(args.reps)
            ]
            seconds = [t.seconds for t in timings]
            median = statistics.median(seconds)
            one = median if one is None else one
            ratios.setdefault(mode, []).append(median / one)
            rate = sum(t.tokens for t in timings) / sum(seconds)
            spread = f"{median:.2f} ({min(seconds):.2f}-{max(seconds):.2f})"
            print(f"| {name} | {mode} | {spread} | {median / one:.2f} | {rate:.1f} |", flush=True)
    for mode, values in ratios.items():
        print(f"{mode}: {statistics.mean(values):.2f}x one sample on average over {len(values)} cases")
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak RSS {rss_gb:.2f} GB")


if __name__ == "__main__":
    main()
