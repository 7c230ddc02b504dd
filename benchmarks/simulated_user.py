"""Simulated users in real crates: does the fix rate on their new errors rise night after night? (run by hand)

    python benchmarks/simulated_user.py run --crate semver-1.0.23 --seed 0 [--days 5] [--per-day 8] \
        [--until-day 2] [--model embedded:qwen2.5-coder-0.5b-instruct] [--folder DIR]
    python benchmarks/simulated_user.py summary [--folder DIR] [--json out.json]

A user is a crate under the registry (Debian's ``/usr/share/cargo/registry``; only crates of
``../shared/crates/train.txt``) and a seed. ``run`` lives the user's remaining days through the
real server (``learner.eval.simulation``): each day's errors, each night's ``learnNow`` cycle with
its gate and hot swap. Everything of one user lives in ``DIR/<crate>-s<seed>/`` (its own data
home, its copy of the crate, ``state.json``), written after every error and night: stop it
at any time, run the same command again and it continues. One user at a time on 2 cores;
run it in the background (``nohup ... &``) and read ``summary`` meanwhile.

``summary`` prints, per user and day: errors, how many got a right offer (rustc's or the
model's, with the Wilson 95% interval), the model's right fixes on the errors rustc could not
fix, the habit routes' rate, what the user did (accepted, edited, nothing recorded), and each
night's outcome and minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import Settings
from learner.eval.crate_cases import allowed_crates
from learner.eval.simulation.user import ErrorResult, SimulatedUser, UserSpec, UserState
from learner.rust.registry import read_package_list, registry_crates
from learner.stats import wilson_interval

DEFAULT_REGISTRY = Path("/usr/share/cargo/registry")
ALLOWED = Path(__file__).resolve().parents[2] / "shared" / "crates" / "train.txt"


def default_folder() -> Path:
    return Settings().data_dir.parent / "sleepy-coder-simulated-users"


def _rate(results: list[ErrorResult], right: Any) -> str:
    if not results:
        return "-"
    k = sum(1 for r in results if right(r))
    low, high = wilson_interval(k, len(results))
    return f"{k}/{len(results)} [{100 * low:.0f}-{100 * high:.0f}%]"


def day_rows(state: UserState) -> list[dict[str, Any]]:
    rows = []
    nights = {n.day: n for n in state.nights}
    for day in sorted({e.day for e in state.errors}):
        errors = [e for e in state.errors if e.day == day and e.outcome != "not-reproduced"]
        beyond = [e for e in errors if not e.rustc_right]
        habit = [e for e in errors if e.route in state.habits]
        night = nights.get(day)
        rows.append(
            {
                "day": day,
                "errors": len(errors),
                "right": _rate(errors, lambda e: e.right),
                "model_beyond_rustc": _rate(beyond, lambda e: e.model_right),
                "habits": _rate(habit, lambda e: e.right),
                "habits_model": _rate(habit, lambda e: e.model_right),
                "outcomes": {k: sum(e.outcome == k for e in errors) for k in ("accepted", "edited", "unrecorded")},
                "night": None
                if night is None
                else {"outcome": night.outcome, "minutes": round(night.seconds / 60, 1), "message": night.message},
            }
        )
    return rows


def summary(folder: Path, as_json: Path | None) -> None:
    users: dict[str, Any] = {}
    for path in sorted(folder.glob("*/state.json")):
        state = UserState.from_json(json.loads(path.read_text()))
        rows = day_rows(state)
        users[path.parent.name] = {"habits": state.habits, "days": rows}
        print(f"\n{path.parent.name} (habits: {', '.join(state.habits)})")
        print(f"{'day':>3} {'errors':>6} {'right':>16} {'model>rustc':>16} {'habits':>16} {'habits model':>16}  night")
        for row in rows:
            night = row["night"]
            said = f"{night['outcome']} ({night['minutes']} min)" if night else ""
            print(
                f"{row['day']:>3} {row['errors']:>6} {row['right']:>16} {row['model_beyond_rustc']:>16} "
                f"{row['habits']:>16} {row['habits_model']:>16}  {said}"
            )
    if not users:
        print(f"no simulated users under {folder}")
    if as_json is not None:
        as_json.write_text(json.dumps(users, indent=1))


def run(args: argparse.Namespace) -> None:
    registry = args.registry
    crate = next((c for c in registry_crates(registry) if c.dir_name == args.crate), None)
    if crate is None:
        raise SystemExit(f"no crate {args.crate} under {registry} (apt-get install librust-<name>-dev)")
    if ALLOWED.is_file():
        allowed_crates([crate], read_package_list(ALLOWED))  # refuses a crate reserved for evaluation
    spec = UserSpec(args.crate, args.seed, registry, days=args.days, per_day=args.per_day, habits=args.habits)
    options: dict[str, Any] = {
        "learnFromDocs": not args.no_docs,
        "learnSteps": args.steps,
        "learnExamples": args.examples,
        "attempts": args.attempts,
        "candidates": args.candidates,
    }
    if args.model:
        options["model"] = args.model
    user = SimulatedUser(
        spec, args.folder / spec.name, options, cache_dir=Settings().cache_dir, say=lambda line: print(line, flush=True)
    )
    state = asyncio.run(user.run(until_day=args.until_day))
    print(json.dumps(day_rows(state), indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="live a user's remaining days and nights (resumable)")
    go.add_argument("--crate", required=True, help="a folder under the registry, e.g. semver-1.0.23")
    go.add_argument("--seed", type=int, default=0)
    go.add_argument("--days", type=int, default=5)
    go.add_argument("--per-day", type=int, default=8)
    go.add_argument("--habits", type=int, default=3)
    go.add_argument("--until-day", type=int, default=None, help="stop after this day's night")
    go.add_argument("--model", default=None)
    go.add_argument("--attempts", type=int, default=Settings.attempts, help="model attempts per error")
    go.add_argument(
        "--candidates", type=int, default=Settings.candidates, help="model candidates per error (1: greedy only, fast)"
    )
    go.add_argument("--no-docs", action="store_true", help="nights learn from the user's code only")
    go.add_argument("--steps", type=int, default=Settings.learn_steps, help="each night's steps per route and phase")
    go.add_argument("--examples", type=int, default=Settings.learn_examples, help="each night's examples per route")
    go.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    go.add_argument("--folder", type=Path, default=default_folder())
    show = sub.add_parser("summary", help="per user and day: fix rates with intervals, nights")
    show.add_argument("--folder", type=Path, default=default_folder())
    show.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        summary(args.folder, args.json)


if __name__ == "__main__":
    main()
