"""Cases materialised as real cargo crates under the cache dir.

Each case is a program crate (:func:`learner.rust.scratch.write_program_crate`, the scratch
mechanism the verifier and the curriculum use too) in a stable folder keyed by its id, so the
persistent target dirs that :func:`learner.fix.pipeline.check_path` and the verifier key by
crate path are reused between runs (re-running a benchmark is incremental). Files are
rewritten only when their content changes, so cargo's fingerprints stay valid.

A ``crate`` case is a copy of its real crate (:func:`learner.rust.scratch.mirror`) with the
case's file replaced, its manifest made standalone and a ``.cargo/config.toml`` that builds its
dependencies from the same registry, offline (:mod:`learner.rust.registry`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

from learner.config import Settings
from learner.eval.cases import CrateSource, EvalCase
from learner.rust.registry import package_names, registry_crates, standalone_config, standalone_manifest
from learner.rust.scratch import crate_files, mirror, write_program_crate


def case_slug(case_id: str) -> str:
    """A folder name for a case id: readable, and unique thanks to a short hash."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", case_id).strip("_")[:60] or "case"
    return f"{readable}-{hashlib.sha1(case_id.encode()).hexdigest()[:8]}"


def package_name(case_id: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", case_id.lower()).strip("_") or "case"
    return f"case_{name}"[:64]


def crate_dir(settings: Settings, case: EvalCase, purpose: str) -> Path:
    """``purpose`` separates the crate the pipeline edits (``work``) from the one that grades (``grade``).

    A ``crate`` case gets the one copy of its real crate that every case of that crate uses in
    turn (:func:`case_lock`): cargo keys its target dir and the verifier its scratch copies by
    the crate's path, so the dependencies and the crate itself build once, not once per case.
    """
    if case.crate is not None:
        return settings.cache_dir / "eval" / purpose / f"crate-{case_slug(case.crate.dir_name)}"
    return settings.cache_dir / "eval" / purpose / case_slug(case.id)


@contextlib.contextmanager
def case_lock(settings: Settings, case: EvalCase) -> Iterator[None]:
    """Hold the case's crates (``work`` and ``grade``) for one sample; other samples of it (and other
    cases of the same real crate, which share its copy) wait.

    Two ``eval run`` in one data home (or two seeds of a case in one run) share these folders;
    without the lock one rewrote the program while the other was fixing or grading it. A file
    lock, so it holds across processes and is released by the kernel if a run dies.
    """
    held = f"crate-{case_slug(case.crate.dir_name)}" if case.crate is not None else case_slug(case.id)
    lock = settings.cache_dir / "eval" / f"{held}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def materialise(settings: Settings, case: EvalCase, program: str, purpose: str = "work") -> Path:
    """Write ``program`` as the case's crate (``Cargo.toml`` + ``src/main.rs`` or ``src/lib.rs``)."""
    root = crate_dir(settings, case, purpose)
    if case.crate is not None:
        write_crate_case(root, case.crate, program)
        return root
    write_program_crate(root, program, package=package_name(case.id), edition=case.edition, crate_type=case.compile_as)
    return root


def write_crate_case(root: Path, source: CrateSource, program: str) -> None:
    """``root`` as a checkable copy of ``source``'s crate with its file holding ``program``."""
    files = {path.relative_to(source.path): path.read_bytes() for path in crate_files(source.path)}
    manifest = Path("Cargo.toml")
    available = _available_packages(source.root)
    files[manifest] = standalone_manifest(files[manifest].decode("utf-8"), available).encode("utf-8")
    files[Path(".cargo/config.toml")] = standalone_config(source.root).encode("utf-8")
    files[Path(source.file)] = program.encode("utf-8")
    # The published .cargo-checksum.json lists the original files; a copy is a path crate.
    files.pop(Path(".cargo-checksum.json"), None)
    mirror(root, files, keep=("Cargo.lock",))


@functools.lru_cache(maxsize=8)
def _available_packages(root: Path) -> frozenset[str]:
    return frozenset(package_names(registry_crates(root)))


def program_path(root: Path, case: EvalCase) -> Path:
    return root / case.program_file
