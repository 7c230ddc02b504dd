"""Building ``crate`` cases from real crates: the curriculum's mutations, confirmed by cargo in the crate.

A development set needs errors in real code, with the real crate around them. For each allowed
crate of a registry, each library source file is mutated by :mod:`learner.rust.mutations` (the
operators the learner trains on: a dropped ``mut``, ``&``, ``.clone()``, derive, lifetime,
bound, conversion, field or a misspelling) and the mutant is checked in a copy of the crate
(:func:`learner.eval.sandbox.write_crate_case`, the evaluation's own materialisation). A mutant
is kept when cargo reports an error with a code; its case names the crate and the file, with the
original file as the reference fix. Which crates may be used is a list of Debian package names
(``../shared/crates/train.txt``): a crate whose package is not on it is refused, never mutated.

Sampling is seeded and capped per file, per operator and per crate, so a set is reproducible and
no single large file dominates it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.eval.cases import CrateSource
from learner.eval.sandbox import write_crate_case
from learner.fix.router import route_for_code
from learner.rust.check import check
from learner.rust.crate import locate_crate
from learner.rust.mutations import mutations
from learner.rust.registry import RegistryCrate, debian_package

#: A library source file larger than this is not mutated (generated tables, vendored code).
MAX_FILE_BYTES = 200_000


class CrateNotAllowed(SleepyCoderError):
    """A crate whose Debian package is not on the allowed list was asked for."""


@dataclass(frozen=True)
class CrateCaseConfig:
    #: Cases kept per crate at most.
    per_crate: int = 12
    #: Cases kept per (crate, operator) at most, so one operator cannot fill a crate's share.
    per_operator: int = 3
    #: Mutants tried per crate at most (each costs one incremental ``cargo check``).
    max_checks: int = 60
    seed: int = 0
    check_timeout_s: float = 120.0


@dataclass(frozen=True)
class CrateReport:
    crate: str
    cases: int
    checks: int
    #: Why the crate gave no cases at all (it does not build here), else None.
    problem: str | None = None


def allowed_crates(crates: Sequence[RegistryCrate], allowed_packages: frozenset[str]) -> list[RegistryCrate]:
    """``crates`` whose Debian package is on the list; raises :class:`CrateNotAllowed` for any other."""
    packages = {c.dir_name: debian_package(c) for c in crates}  # one dpkg query per crate
    refused = [f"{name} ({package})" for name, package in packages.items() if package not in allowed_packages]
    if refused:
        raise CrateNotAllowed(
            "not on the allowed crate list (every other Debian crate is reserved for evaluation): " + ", ".join(refused)
        )
    return list(crates)


def library_files(crate: RegistryCrate) -> list[str]:
    """The crate's ``src/`` files worth mutating, relative to its root, sorted."""
    files = []
    for path in sorted((crate.path / "src").rglob("*.rs")):
        if path.stat().st_size <= MAX_FILE_BYTES:
            files.append(path.relative_to(crate.path).as_posix())
    return files


def crate_cases(
    settings: Settings,
    crate: RegistryCrate,
    config: CrateCaseConfig = CrateCaseConfig(),
    on_report: Callable[[CrateReport], None] = lambda _report: None,
) -> Iterator[dict[str, Any]]:
    """Rows of ``kind: crate`` cases for ``crate`` (see the module doc); ``on_report`` gets its summary."""
    work = settings.cache_dir / "crate-cases" / crate.dir_name
    target = settings.targets_dir / f"crate-cases-{crate.dir_name}"
    files = library_files(crate)
    if not files:
        on_report(CrateReport(crate.dir_name, 0, 0, "no library source files"))
        return
    originals = {f: (crate.path / f).read_text(encoding="utf-8", errors="replace") for f in files}
    write_crate_case(work, CrateSource(crate.root, crate.dir_name, files[0]), originals[files[0]])
    checked = locate_crate(work)  # the copy stays where it is: locate it once, not per mutant
    try:
        baseline = check(checked, target, timeout_s=config.check_timeout_s)
    except SleepyCoderError as exc:
        on_report(CrateReport(crate.dir_name, 0, 1, f"does not build here: {exc}"))
        return
    if baseline.errors:
        on_report(CrateReport(crate.dir_name, 0, 1, f"does not build here: {baseline.errors[0].message}"))
        return
    package = debian_package(crate)
    rng = random.Random(f"{config.seed}|{crate.dir_name}")
    proposals = [(f, op, m) for f in files for op, m in mutations(originals[f].encode("utf-8"))]
    rng.shuffle(proposals)
    kept = checks = 0
    per_operator: dict[str, int] = {}
    for file, operator, mutation in proposals:
        if kept >= config.per_crate or checks >= config.max_checks:
            break
        if per_operator.get(operator.name, 0) >= config.per_operator:
            continue
        broken = mutation.apply(originals[file].encode("utf-8")).decode("utf-8", "replace")
        source = CrateSource(crate.root, crate.dir_name, file)
        write_crate_case(work, source, broken)
        checks += 1
        try:
            result = check(checked, target, timeout_s=config.check_timeout_s)
        except SleepyCoderError:
            continue
        codes = list(dict.fromkeys(d.code for d in result.errors if d.code))
        if not codes:
            continue
        per_operator[operator.name] = per_operator.get(operator.name, 0) + 1
        kept += 1
        stem = Path(file).with_suffix("").as_posix().removeprefix("src/")
        yield {
            "id": f"crates/{crate.name}/{stem}/{operator.name}-{mutation.start}",
            "kind": "crate",
            "crate": crate.dir_name,
            "file": file,
            "error_codes": codes,
            "family": route_for_code(codes[0]).name,
            "broken": broken,
            "fixed": originals[file],
            "provenance": {
                "package": package,
                "operator": operator.name,
                "offset": mutation.start,
                "seed": config.seed,
            },
        }
    write_crate_case(work, CrateSource(crate.root, crate.dir_name, files[0]), originals[files[0]])
    on_report(CrateReport(crate.dir_name, kept, checks))
