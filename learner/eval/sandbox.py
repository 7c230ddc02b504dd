"""Cases materialised as real cargo crates under the cache dir.

Each case gets a stable folder keyed by its id, so the persistent target dirs that
:func:`learner.fix.pipeline.check_path` and the verifier key by crate path are reused between
runs (re-running a benchmark is incremental). Files are rewritten only when their content
changes, so cargo's fingerprints stay valid.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from learner.config import Settings
from learner.eval.cases import EvalCase
from learner.files import write_with_new_mtime

MANIFEST = """[package]
name = "{name}"
version = "0.1.0"
edition = "{edition}"
publish = false

[dependencies]
"""


def case_slug(case_id: str) -> str:
    """A folder name for a case id: readable, and unique thanks to a short hash."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", case_id).strip("_")[:60] or "case"
    return f"{readable}-{hashlib.sha1(case_id.encode()).hexdigest()[:8]}"


def package_name(case_id: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", case_id.lower()).strip("_") or "case"
    return f"case_{name}"[:64]


def source_file(crate_type: str) -> str:
    return "src/lib.rs" if crate_type == "lib" else "src/main.rs"


def crate_dir(settings: Settings, case: EvalCase, purpose: str) -> Path:
    """``purpose`` separates the crate the pipeline edits (``work``) from the one that grades (``grade``)."""
    return settings.cache_dir / "eval" / purpose / case_slug(case.id)


def materialise(settings: Settings, case: EvalCase, program: str, purpose: str = "work") -> Path:
    """Write ``program`` as the case's crate (``Cargo.toml`` + ``src/main.rs`` or ``src/lib.rs``)."""
    root = crate_dir(settings, case, purpose)
    crate_type = case.compile_as
    write_with_new_mtime(
        root / "Cargo.toml", MANIFEST.format(name=package_name(case.id), edition=case.edition).encode()
    )
    write_with_new_mtime(root / source_file(crate_type), program.encode("utf-8"))
    other = root / source_file("bin" if crate_type == "lib" else "lib")
    other.unlink(missing_ok=True)
    return root


def program_path(root: Path, case: EvalCase) -> Path:
    return root / source_file(case.compile_as)
