"""Benchmark cases: JSON Lines rows turned into typed records, with the crate type to compile as.

The rows come from ``../shared/bench`` (see its README). Two rules live here so every caller
applies them the same way: a ``bin`` case whose program or reference has no ``fn main`` is
compiled as a ``lib`` (a missing main must never be what is graded), and cases marked
``valid_case: false`` are skipped by default, each with the reason.

A case is a lone program, or (``"kind": "crate"``) one file of a real crate: ``crate`` names a
folder under a registry root (Debian's ``/usr/share/cargo/registry`` unless ``crate_root`` says
otherwise), ``file`` the path inside it that ``broken`` replaces; the rest of the crate and its
dependencies are real. A crate case whose crate is not installed is skipped with the command
that installs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from learner.errors import SleepyCoderError
from learner.files import JsonLinesError, read_jsonl
from learner.rust.crate import has_main_fn
from learner.rust.registry import DEBIAN_REGISTRY, parse_dir_name, usual_package
from learner.rust.scratch import program_file


class CaseFormatError(SleepyCoderError):
    """A case file is missing, unreadable or has a row without the required fields."""


@dataclass(frozen=True)
class CrateSource:
    """The real crate a ``crate`` case lives in: ``root / dir_name``, with ``file`` replaced by the case."""

    root: Path
    dir_name: str
    file: str

    @property
    def path(self) -> Path:
        return self.root / self.dir_name


@dataclass(frozen=True)
class EvalCase:
    """One broken program, the codes it fails with, and (maybe) a reference fix."""

    id: str
    #: Where the case comes from (``sleepy_koans``, ``rustc_explain``): results are reported per source.
    source: str
    error_codes: tuple[str, ...]
    #: ``bin`` or ``lib`` as declared; see :attr:`compile_as` for what is actually built.
    crate_type: str
    edition: str
    broken: str
    fixed: str | None
    family: str | None = None
    #: Set for a ``crate`` case: the real crate whose file ``broken`` replaces.
    crate: CrateSource | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "crate" if self.crate is not None else "program"

    @property
    def program_file(self) -> str:
        """The file the case's program is, relative to its crate's root."""
        return self.crate.file if self.crate is not None else program_file(self.compile_as)

    @property
    def primary_code(self) -> str | None:
        return self.error_codes[0] if self.error_codes else None

    @property
    def compile_as(self) -> str:
        return compile_crate_type(self.crate_type, self.broken, self.fixed)


@dataclass(frozen=True)
class SkippedCase:
    id: str
    reason: str


@dataclass(frozen=True)
class CaseSet:
    cases: tuple[EvalCase, ...]
    skipped: tuple[SkippedCase, ...]
    files: tuple[str, ...]


def compile_crate_type(crate_type: str, broken: str, fixed: str | None) -> str:
    """``lib`` for a bin whose program or reference lacks ``fn main``, else the declared type."""
    if crate_type == "bin" and (not has_main_fn(broken) or (fixed is not None and not has_main_fn(fixed))):
        return "lib"
    return crate_type


def case_source(case_id: str, row: Mapping[str, Any], file_stem: str) -> str:
    """The id's prefix (``sleepy_koans/bc_001``), else the row's ``source_kind``, else the file name."""
    if "/" in case_id:
        return case_id.split("/", 1)[0]
    kind = row.get("source_kind")
    return str(kind) if kind else file_stem


def parse_crate_source(row: Mapping[str, Any], crate_root: Path) -> CrateSource:
    """The ``crate`` and ``file`` fields of a crate case, checked (never a path out of the crate)."""
    name, file = row.get("crate"), row.get("file")
    if not isinstance(name, str) or parse_dir_name(name) is None:
        raise ValueError("field 'crate' must name a crate folder such as 'semver-1.0.14'")
    if not isinstance(file, str) or not file.endswith(".rs"):
        raise ValueError("field 'file' must be the path of a .rs file inside the crate")
    parts = Path(file).parts
    if Path(file).is_absolute() or ".." in parts or not parts:
        raise ValueError(f"field 'file' {file!r} must be a relative path inside the crate")
    return CrateSource(crate_root, name, Path(file).as_posix())


def parse_case(row: Mapping[str, Any], file_stem: str, crate_root: Path = DEBIAN_REGISTRY) -> EvalCase:
    """Build an :class:`EvalCase` from one row; raises ``ValueError`` naming the bad field."""
    for key in ("id", "broken"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise ValueError(f"field {key!r} is missing or not a string")
    codes = row.get("error_codes") or []
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise ValueError("field 'error_codes' must be a list of strings")
    kind = row.get("kind") or "program"
    if kind not in ("program", "crate"):
        raise ValueError(f"kind {kind!r} is neither 'program' nor 'crate'")
    crate = parse_crate_source(row, crate_root) if kind == "crate" else None
    crate_type = str(row.get("crate_type") or ("lib" if crate else "bin"))
    if crate_type not in ("bin", "lib"):
        raise ValueError(f"crate_type {crate_type!r} is neither 'bin' nor 'lib'")
    fixed = row.get("fixed")
    case_id = str(row["id"])
    return EvalCase(
        id=case_id,
        source=case_source(case_id, row, file_stem),
        error_codes=tuple(codes),
        crate_type=crate_type,
        edition=str(row.get("edition") or "2021"),
        broken=str(row["broken"]),
        fixed=fixed if isinstance(fixed, str) and fixed else None,
        family=str(row["family"]) if row.get("family") else None,
        crate=crate,
        raw=dict(row),
    )


def invalid_reason(row: Mapping[str, Any]) -> str | None:
    """Why a row is marked ``valid_case: false`` (its ``problems``), or None for a valid row."""
    if row.get("valid_case", True) is not False:
        return None
    problems = row.get("problems") or []
    detail = "; ".join(str(p) for p in problems) if problems else "no reason given"
    return f"marked valid_case=false: {detail}"


def missing_crate_reason(case: EvalCase) -> str | None:
    """Why a crate case cannot run here (its crate is not installed), or None."""
    if case.crate is None or (case.crate.path / case.crate.file).is_file():
        return None
    parsed = parse_dir_name(case.crate.dir_name)
    package = usual_package(parsed[0]) if parsed else "the crate's package"
    where = case.crate.path / case.crate.file
    return f"{where} is not installed (on Debian: apt-get install {package}, or pass --crate-root)"


def load_cases(
    paths: Iterable[Path],
    *,
    include_invalid: bool = False,
    limit: int | None = None,
    crate_root: Path = DEBIAN_REGISTRY,
) -> CaseSet:
    """Read every case of ``paths`` in order; ``limit`` keeps the first N runnable cases in total.

    ``crate_root`` is the registry the ``crate`` cases name their crates in.
    """
    cases: list[EvalCase] = []
    skipped: list[SkippedCase] = []
    files: list[str] = []
    seen: set[str] = set()
    for path in paths:
        path = Path(path)
        files.append(str(path))
        try:
            rows = list(read_jsonl(path))
        except JsonLinesError as exc:
            raise CaseFormatError(f"cannot read cases: {exc}") from exc
        for number, row in rows:
            try:
                case = parse_case(row, path.stem, crate_root)
            except ValueError as exc:
                raise CaseFormatError(f"{path}:{number}: not a valid case: {exc}") from exc
            if case.id in seen:
                raise CaseFormatError(f"{path}:{number}: duplicate case id {case.id!r}")
            seen.add(case.id)
            reason = None if include_invalid else invalid_reason(row)
            if (reason := reason or missing_crate_reason(case)) is not None:
                skipped.append(SkippedCase(case.id, reason))
                continue
            if limit is not None and len(cases) >= limit:
                continue
            cases.append(case)
    return CaseSet(tuple(cases), tuple(skipped), tuple(files))
