"""Where a simulated user will make each day's errors: distinct items of their crate, drawn once.

A user is a crate and a seed. Every mutant the curriculum's operators propose in the crate's
library files (plus the human-shaped ones: a value moved into a call, a field reference without
a lifetime, a dropped import, a wrong annotation) is a candidate error; it becomes a *site*
when cargo, in a scratch copy, reports an error whose route is the one the operator aims at
(the same test the curriculum applies). One site per item, so no two days ever share an item,
and the whole plan is drawn at the start and kept in the user's state: tomorrow's sites are
known today, which is what lets :mod:`learner.learn.reserved` keep them out of tonight's training.

People repeat their mistakes: each user has a few *habit* routes (drawn by the seed among the
routes with enough sites), and a habit site is drawn four times as often as another, so the
routes the learner can improve get several errors a day, and the rest still appear.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.fix.router import route_for
from learner.learn.reserved import site_key
from learner.rust import items
from learner.rust.check import check
from learner.rust.crate import locate_crate
from learner.rust.mutations import OPERATOR_BY_NAME, mutations

#: A habit site is drawn this many times as often as any other.
HABIT_WEIGHT = 4.0


@dataclass(frozen=True)
class ErrorSite:
    """One error the user will make: ``broken`` is the whole file with it."""

    id: str
    day: int
    file: str
    operator: str
    offset: int
    route: str
    codes: tuple[str, ...]
    item: str
    key: str
    broken: str

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["codes"] = list(self.codes)
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ErrorSite:
        return cls(**{**row, "codes": tuple(row["codes"])})


@dataclass(frozen=True)
class SitePlan:
    sites: list[ErrorSite]
    habits: list[str]
    checks: int


class PlanError(SleepyCoderError):
    """The crate does not build here, or offers too few error sites for the plan."""


def weighted_order(weights: Sequence[float], rng: random.Random) -> list[int]:
    """Indices in a weighted random order without replacement (Efraimidis-Spirakis keys)."""
    keys = [rng.random() ** (1.0 / w) for w in weights]
    return sorted(range(len(weights)), key=lambda i: keys[i], reverse=True)


def choose_habits(counts: dict[str, int], wanted: int, minimum: int, rng: random.Random) -> list[str]:
    """``wanted`` routes among those with at least ``minimum`` sites (the seed decides which)."""
    eligible = sorted(r for r, n in counts.items() if n >= minimum)
    if len(eligible) < wanted:  # too few: the best-provided routes
        eligible = sorted(counts, key=lambda r: (-counts[r], r))[: max(wanted, 1)]
    return sorted(rng.sample(eligible, min(wanted, len(eligible))))


def assign_days(
    pool: Sequence[ErrorSite], habits: Sequence[str], days: int, per_day: int, seed: int
) -> list[ErrorSite]:
    """Draw ``days * per_day`` sites (habit routes weighted) and give each day its share, in order."""
    rng = random.Random(f"{seed}|days")
    weights = [HABIT_WEIGHT if s.route in habits else 1.0 for s in pool]
    chosen = [pool[i] for i in weighted_order(weights, rng)[: days * per_day]]
    out = []
    for n, site in enumerate(chosen):
        day = n // per_day + 1
        out.append(ErrorSite(**{**site.__dict__, "day": day}))
    return out


def plan_sites(
    settings: Settings,
    crate_root: Path,
    files: Sequence[str],
    *,
    seed: int,
    days: int,
    per_day: int,
    habits: int = 3,
    max_checks: int | None = None,
    timeout_s: float = 120.0,
    on_check: Callable[[int, int], None] = lambda _checks, _found: None,
) -> SitePlan:
    """Plan a user's errors in the crate at ``crate_root`` (a checkable copy; it is not modified).

    Mutants are checked in a scratch copy until there are twice as many sites as needed (or
    ``max_checks`` ran out); :class:`PlanError` when the crate does not build or too few are found.
    """
    need = days * per_day
    budget = max_checks if max_checks is not None else need * 6
    scratch = settings.cache_dir / "simulated-user" / f"plan-{crate_root.name}"
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(crate_root, scratch, ignore=shutil.ignore_patterns("target"))
    crate = locate_crate(scratch)
    target = settings.targets_dir / f"simulated-user-{crate_root.name}"
    originals = {f: (crate_root / f).read_text(encoding="utf-8") for f in files}
    try:
        baseline = check(crate, target, timeout_s=timeout_s)
    except SleepyCoderError as exc:
        raise PlanError(f"{crate_root} does not build here: {exc}") from exc
    if baseline.errors:
        raise PlanError(f"{crate_root} does not build here: {baseline.errors[0].message}")
    rng = random.Random(f"{seed}|{crate_root.name}|sites")
    proposals = [(f, op, m) for f in files for op, m in mutations(originals[f].encode("utf-8"))]
    rng.shuffle(proposals)
    pool: list[ErrorSite] = []
    used: set[str] = set()
    checks = 0
    try:
        for file, operator, mutation in proposals:
            if len(pool) >= 2 * need or checks >= budget:
                break
            original = originals[file]
            key = site_key(file, original, mutation.start)
            if key in used:
                continue
            broken = mutation.apply(original.encode("utf-8")).decode("utf-8", "replace")
            (scratch / file).write_text(broken)
            checks += 1
            try:
                result = check(crate, target, timeout_s=timeout_s)
            except SleepyCoderError:
                continue
            finally:
                (scratch / file).write_text(original)
            errors = [d for d in result.errors if d.code]
            if not errors or route_for(errors[0]).name not in OPERATOR_BY_NAME[operator.name].routes:
                continue
            used.add(key)
            region = items.region_at(file, original.encode("utf-8"), mutation.start)
            pool.append(
                ErrorSite(
                    id=f"{file}:{operator.name}:{mutation.start}",
                    day=0,
                    file=file,
                    operator=operator.name,
                    offset=mutation.start,
                    route=route_for(errors[0]).name,
                    codes=tuple(dict.fromkeys(d.code for d in errors if d.code)),
                    item=region.label,
                    key=key,
                    broken=broken,
                )
            )
            on_check(checks, len(pool))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if len(pool) < need:
        raise PlanError(f"only {len(pool)} error sites in {crate_root.name} after {checks} checks; {need} needed")
    counts: dict[str, int] = {}
    for site in pool:
        counts[site.route] = counts.get(site.route, 0) + 1
    chosen_habits = choose_habits(counts, habits, minimum=days, rng=random.Random(f"{seed}|habits"))
    return SitePlan(assign_days(pool, chosen_habits, days, per_day, seed), chosen_habits, checks)
