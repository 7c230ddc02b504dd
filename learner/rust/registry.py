"""Real crates from a directory registry (Debian's ``/usr/share/cargo/registry``), made checkable offline.

``apt-get install librust-NAME-dev`` unpacks a crate's published sources as ``NAME-VERSION/``
under the registry root, with a ``.cargo-checksum.json`` that makes the folder a cargo
*directory source*. To check one of them on its own we copy it and point cargo at the same root
for its dependencies (``[source.crates-io] replace-with``), offline.

What is checked is the crate as a dependent builds it: its library and binaries. Published
tests and benches need dev-dependencies Debian rarely ships (and some benches need a nightly
compiler), and Debian ships each optional feature's dependencies as separate packages, while
cargo resolves every dependency a manifest names, optional and dev ones included, before it
checks anything. :func:`standalone_manifest` therefore drops the dev-dependencies and the test,
bench and example targets, and the optional dependencies the registry lacks with the features
that name them; nothing else is changed.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from learner.errors import SleepyCoderError

#: Where ``apt-get install librust-NAME-dev`` puts crate sources.
DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")

_DIR_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_-]+?)-(?P<version>\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)$")
_DEP_TABLES = ("dependencies", "dev-dependencies", "build-dependencies")
#: Target tables that may use dev-dependencies, and the manifest key that turns off their discovery.
_DEV_TARGETS = {"test": "autotests", "bench": "autobenches", "example": "autoexamples"}


class ManifestError(SleepyCoderError, ValueError):
    """A crate's ``Cargo.toml`` is missing or not valid TOML."""


@dataclass(frozen=True)
class RegistryCrate:
    """One unpacked crate: ``root / dir_name`` holds its sources."""

    root: Path
    dir_name: str
    name: str
    version: str

    @property
    def path(self) -> Path:
        return self.root / self.dir_name


def parse_dir_name(dir_name: str) -> tuple[str, str] | None:
    """``("version-compare", "0.1.1")`` for ``version-compare-0.1.1``; None for another folder."""
    match = _DIR_NAME.match(dir_name)
    return (match["name"], match["version"]) if match else None


def registry_crates(root: Path) -> list[RegistryCrate]:
    """Every crate folder under ``root`` (sorted by name), or an empty list when there is no root."""
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        parsed = parse_dir_name(entry.name)
        if parsed is not None and (entry / "Cargo.toml").is_file():
            found.append(RegistryCrate(root, entry.name, *parsed))
    return found


def package_names(crates: Iterable[RegistryCrate]) -> set[str]:
    """Package names as cargo compares them (``-`` and ``_`` are the same name on crates.io)."""
    return {_canonical(c.name) for c in crates}


def _canonical(name: str) -> str:
    return name.replace("_", "-").lower()


def standalone_config(root: Path) -> str:
    """Cargo configuration for a copied crate: dependencies from ``root`` only, offline, lints capped.

    Lints are capped at warnings as cargo caps them for any dependency: a published
    ``#![deny(warnings)]`` meets lints newer than the crate and must not stop it building.
    """
    return tomli_w.dumps(
        {
            "source": {
                "crates-io": {"replace-with": "sleepy-coder-registry"},
                "sleepy-coder-registry": {"directory": str(root)},
            },
            "net": {"offline": True},
            "build": {"rustflags": ["--cap-lints", "warn"]},
        }
    )


def standalone_manifest(text: str, available: Set[str]) -> str:
    """The published manifest ``text`` minus the dependencies not in ``available`` (see the module doc).

    A missing non-optional normal or build dependency is kept: cargo then says which crate is
    missing, which is the right error for a crate that cannot build here.
    """
    try:
        manifest: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"Cargo.toml is not valid TOML: {exc}") from exc
    dropped_optional: set[str] = set()
    for table, owner in _dependency_tables(manifest):
        for key in list(table):
            spec = table[key]
            package = spec.get("package", key) if isinstance(spec, dict) else key
            if owner == "dev-dependencies":
                del table[key]
            elif isinstance(spec, dict) and spec.get("optional") and _canonical(package) not in available:
                del table[key]
                dropped_optional.add(key)
    if dropped_optional and isinstance(manifest.get("features"), dict):
        manifest["features"] = _features_without(manifest["features"], dropped_optional)
    package = manifest.setdefault("package", {})
    for target, discovery in _DEV_TARGETS.items():
        manifest.pop(target, None)
        package[discovery] = False
    # Unit tests (``#[cfg(test)]``) may use the dev-dependencies too: sleepy-coder checks the
    # library and binaries only (see :attr:`learner.rust.crate.CrateRef.check_tests`).
    package.setdefault("metadata", {}).setdefault("sleepy-coder", {})["check-tests"] = False
    return tomli_w.dumps(manifest)


def _dependency_tables(manifest: dict[str, Any]) -> Iterable[tuple[dict[str, Any], str]]:
    for name in _DEP_TABLES:
        if isinstance(manifest.get(name), dict):
            yield manifest[name], name
    for spec in (manifest.get("target") or {}).values():
        if isinstance(spec, dict):
            for name in _DEP_TABLES:
                if isinstance(spec.get(name), dict):
                    yield spec[name], name


def _features_without(features: Mapping[str, Any], dropped: set[str]) -> dict[str, list[str]]:
    """Features with every reference to a dropped dependency removed (``dep``, ``dep:dep``, ``dep/f``, ``dep?/f``)."""

    def refers(entry: str) -> bool:
        head = entry.split("/", 1)[0].rstrip("?")
        return head.removeprefix("dep:") in dropped

    return {
        name: [e for e in entries if not refers(str(e))] for name, entries in features.items() if name not in dropped
    }


def debian_package(crate: RegistryCrate) -> str:
    """The Debian package that installed ``crate`` (``dpkg-query -S``), else the usual name for it.

    The usual name (``librust-NAME-dev``) is only a guess where versioned packages exist
    (``librust-arrayvec-0.5-dev``), which is why the package database is asked first.
    """
    try:
        out = subprocess.run(
            ["dpkg-query", "-S", str(crate.path)], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        out = None
    if out is not None and out.returncode == 0:
        for line in out.stdout.splitlines():
            owner, _, path = line.partition(": ")
            if path.strip() == str(crate.path):
                return owner.split(",")[0].split(":")[0].strip()
    return usual_package(crate.name)


def usual_package(name: str) -> str:
    """The name Debian gives the package of crate ``name``: ``librust-NAME-dev``."""
    return f"librust-{_canonical(name)}-dev"


def read_package_list(path: Path) -> frozenset[str]:
    """Package names, one a line (``../shared/crates/train.txt``); blank lines and ``#`` comments skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
