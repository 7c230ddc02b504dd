"""Time from diagnostics to the first verified fix, rustc path vs model path (run by hand).

    python benchmarks/fix_latency.py [--limit 20] [--attempts 1] [--no-model] [--lookup-cases 6]

Cases: the errors of the example crate plus the cases in ../shared/bench (materialised the way
the evaluation harness does). For each case the crate is checked once (not timed: that is the
diagnostics), then each fix source runs through the same pipeline the CLI uses and we time:

- rustc path: until the first verified rustc suggestion (cases where rustc has one);
- model path: each model attempt (generation + verification), and the time to a verified model
  fix where one exists.

Then tokens/s of plain greedy decoding vs prompt lookup on the same fix prompts. Prints p50/p95
with n, and per-case rows with --verbose. Targets (issue 3, 2-core machine): rustc fix < 0.3 s,
model p50 < 5 s and p95 < 12 s, prompt lookup >= 2x tokens/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import Settings
from learner.eval.cases import load_cases
from learner.eval.sandbox import materialise
from learner.fix.pipeline import CheckSession, check_path
from learner.fix.prompt import build_prompt, collect_regions
from learner.fix.router import route_for
from learner.fix.sources import FixContext, ModelFixSource, RustcSuggestionSource
from learner.model.handle import RuntimeHandle
from learner.stats import percentile

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "bench"


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<34} n=0"
    return (
        f"{name:<34} n={len(values):<3} p50={percentile(values, 0.5):6.2f}s  p95={percentile(values, 0.95):6.2f}s"
        f"  min={min(values):.2f}s max={max(values):.2f}s"
    )


def sessions(settings: Settings, limit: int) -> list[tuple[str, CheckSession]]:
    found = [("example/typical-errors", check_path(REPO / "examples" / "typical-errors", settings))]
    files = sorted(BENCH.glob("*.jsonl")) if BENCH.is_dir() else []
    if files:
        for case in load_cases(files, limit=limit).cases:
            root = materialise(settings, case, case.broken, purpose="latency")
            found.append((case.id, check_path(root, settings)))
    else:
        print(f"note: {BENCH} not found; only the example crate is measured")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="benchmark cases (per file order)")
    parser.add_argument("--attempts", type=int, default=1)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--lookup-cases", type=int, default=6, help="prompts for the prompt-lookup comparison")
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    settings = Settings(attempts=args.attempts, max_new_tokens=args.max_new_tokens)
    settings.ensure_dirs()
    checked = sessions(settings, args.limit)
    rustc_times: list[float] = []
    model_attempts: list[float] = []
    model_verified: list[float] = []
    handle = RuntimeHandle(settings)
    if not args.no_model:
        started = time.monotonic()
        handle.get()
        print(f"model load: {time.monotonic() - started:.1f}s")
    lookup_prompts = []
    for case_id, session in checked:
        for diagnostic in session.errors[:3]:
            route = route_for(diagnostic)
            ctx = FixContext(settings, diagnostic, route, session.verifier)
            started = time.monotonic()
            for verified in RustcSuggestionSource().propose(ctx):
                if verified.verdict.ok:
                    rustc_times.append(time.monotonic() - started)
                    break
            if args.no_model:
                continue
            started = time.monotonic()
            for verified in ModelFixSource(handle).propose(ctx):
                model_attempts.append(verified.candidate.latency_s)
                if verified.verdict.ok:
                    model_verified.append(time.monotonic() - started)
            if args.verbose:
                print(f"  {case_id} {diagnostic.code}: attempts so far {len(model_attempts)}")
            if len(lookup_prompts) < args.lookup_cases:
                regions = collect_regions(session.crate.root, diagnostic)
                if regions:
                    lookup_prompts.append(build_prompt(diagnostic, route, regions))

    print(f"\ncases: {len(checked)} crates, errors measured: up to 3 per crate")
    print(summary("rustc: first verified fix", rustc_times))
    if args.no_model:
        return
    print(summary(f"model: one attempt (gen+verify, {args.attempts} max)", model_attempts))
    print(summary("model: first verified fix", model_verified))

    runtime = handle.get()
    rates: dict[bool, list[float]] = {False: [], True: []}
    for prompt in lookup_prompts:
        for lookup in (False, True):
            generation = runtime.generate(
                list(prompt.messages), max_new_tokens=args.max_new_tokens, prompt_lookup=lookup
            )
            rates[lookup].append(generation.new_tokens / max(generation.seconds, 1e-9))
    if lookup_prompts:
        plain, fast = statistics.median(rates[False]), statistics.median(rates[True])
        print(
            f"tokens/s over {len(lookup_prompts)} fix prompts: plain median {plain:.1f}, "
            f"prompt lookup median {fast:.1f} ({fast / plain:.2f}x)"
        )


if __name__ == "__main__":
    main()
