"""Build a development set of ``kind: crate`` cases from real Debian crates (run by hand).

    apt-get install librust-semver-dev librust-glob-dev ...      # crates on ../shared/crates/train.txt
    python benchmarks/crate_cases.py --out crate-dev.jsonl --crate semver --crate glob
    sleepy-coder eval run crate-dev.jsonl --strategy pipeline

Every installed crate given with ``--crate`` (a package name such as ``semver`` or a folder such
as ``semver-1.0.14``; default: every installed crate on the list) must be on the allowed list,
``../shared/crates/train.txt`` unless ``--allowed`` names another: every other Debian crate is
reserved for evaluation and is refused, never mutated. See :mod:`learner.eval.crate_cases`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learner.config import Settings
from learner.eval.crate_cases import CrateCaseConfig, CrateReport, allowed_crates, crate_cases
from learner.rust.registry import DEBIAN_REGISTRY, debian_package, read_package_list, registry_crates

DEFAULT_ALLOWED = Path(__file__).resolve().parents[2] / "shared" / "crates" / "train.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crate-root", type=Path, default=DEBIAN_REGISTRY)
    parser.add_argument("--allowed", type=Path, default=DEFAULT_ALLOWED, help="allowed Debian packages, one a line")
    parser.add_argument("--crate", action="append", default=[], help="package or folder name; repeatable")
    parser.add_argument("--per-crate", type=int, default=12)
    parser.add_argument("--per-operator", type=int, default=3)
    parser.add_argument("--max-checks", type=int, default=60, help="mutants checked per crate at most")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    allowed = read_package_list(args.allowed)
    installed = registry_crates(args.crate_root)
    if args.crate:
        chosen = [c for c in installed if c.name in args.crate or c.dir_name in args.crate]
        missing = sorted(set(args.crate) - {c.name for c in chosen} - {c.dir_name for c in chosen})
        if missing:
            sys.exit(f"not installed under {args.crate_root}: {', '.join(missing)}")
        crates = allowed_crates(chosen, allowed)
    else:
        crates = [c for c in installed if debian_package(c) in allowed]
    config = CrateCaseConfig(args.per_crate, args.per_operator, args.max_checks, args.seed)
    settings = Settings()

    def report(r: CrateReport) -> None:
        detail = f": {r.problem}" if r.problem else ""
        print(f"{r.crate}: {r.cases} case(s) from {r.checks} check(s){detail}", file=sys.stderr, flush=True)

    total = 0
    with args.out.open("w", encoding="utf-8") as out:
        for crate in crates:
            for row in crate_cases(settings, crate, config, report):
                out.write(json.dumps(row) + "\n")
                out.flush()
                total += 1
    print(f"{total} case(s) from {len(crates)} crate(s) -> {args.out}")


if __name__ == "__main__":
    main()
