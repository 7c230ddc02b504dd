"""Held-out mutations: does a learning run help on its own kind of data? (run by hand)

    SLEEPY_CODER_HOME=... python benchmarks/heldout_mutations.py --route moved-value ... \
        --per-route 48 --out heldout.jsonl
    SLEEPY_CODER_HOME=... sleepy-coder eval run heldout.jsonl --strategy routed --attempts 1
    SLEEPY_CODER_HOME=... sleepy-coder eval run heldout.jsonl --strategy model+hints --attempts 1

The shared benchmark asks whether learning from doc mutations transfers to other people's
errors. This asks the narrower question first: on *more* rustc-confirmed mutations of the
same routes, from sources the run never trained on, does the route's adapter beat the base
model? The curriculum is rebuilt with more examples per route (``record=False``: nothing is
registered as a training set); every example whose broken or fixed program appears in any
training set the store recorded is dropped by the evaluation's own leakage check (so all
mutants of a trained source go); the rest are written in the benchmark's case format. The
benchmark cases themselves are excluded by the curriculum as always.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import Settings
from learner.eval.cases import parse_case
from learner.eval.leakage import check_cases, training_index
from learner.learn.curriculum import CurriculumConfig, build_curriculum
from learner.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", action="append", required=True, help="a route to draw cases for; repeatable")
    parser.add_argument("--per-route", type=int, default=48, help="examples to build per route before the filter")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    settings = Settings()
    settings.ensure_dirs()
    result = build_curriculum(
        settings, CurriculumConfig(per_route=args.per_route, routes=tuple(args.route), use_store=False), record=False
    )
    rows = []
    for route, examples in result.examples.items():
        for n, ex in enumerate(examples):
            rows.append(
                {
                    "id": f"heldout/{route}-{n:03d}",
                    "error_codes": [ex.code],
                    "crate_type": "lib" if ex.file == "lib.rs" else "bin",
                    "edition": ex.edition,
                    "broken": ex.broken,
                    "fixed": ex.fixed,
                    "family": route,
                    "provenance": f"{ex.origin} ({ex.operator})",
                }
            )
    with Store.open(settings) as store:
        index = training_index(store)
    clean, report = check_cases([parse_case(r, "heldout") for r in rows], index)
    keep = {c.id for c in clean}
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows if r["id"] in keep))
    print(report.summary())
    for route in args.route:
        built = sum(1 for r in rows if r["family"] == route)
        kept = sum(1 for r in rows if r["family"] == route and r["id"] in keep)
        print(f"{route}: {built} built, {kept} held out (never trained on)")
    print(f"wrote {len(keep)} cases to {args.out}")


if __name__ == "__main__":
    main()
