"""Crates from a directory registry (Debian's layout) copied and checked on their own, offline."""

from __future__ import annotations

import tomllib
from pathlib import Path

from learner.eval.cases import CrateSource
from learner.eval.sandbox import write_crate_case
from learner.rust.check import check
from learner.rust.crate import locate_crate
from learner.rust.registry import (
    package_names,
    parse_dir_name,
    registry_crates,
    standalone_config,
    standalone_manifest,
)
from tests.rust_fixtures import TINYLIB_COUNT, TINYLIB_MANIFEST, make_registry


def test_crate_folders_are_named_by_package_and_version() -> None:
    assert parse_dir_name("version-compare-0.1.1") == ("version-compare", "0.1.1")
    assert parse_dir_name("sval-1.0.0-alpha.5") == ("sval", "1.0.0-alpha.5")
    assert parse_dir_name("not a crate") is None


def test_registry_lists_unpacked_crates_and_nothing_for_a_missing_root(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry")
    (root / "stray-folder").mkdir()
    assert [c.dir_name for c in registry_crates(root)] == ["tinydep-0.1.0", "tinylib-0.2.0"]
    assert registry_crates(tmp_path / "nowhere") == []


def test_standalone_manifest_drops_what_the_registry_lacks_and_keeps_the_rest() -> None:
    manifest = tomllib.loads(standalone_manifest(TINYLIB_MANIFEST, {"tinydep"}))
    assert set(manifest["dependencies"]) == {"tinydep"}  # the optional `absent` is gone
    assert manifest["features"] == {"default": ["std"], "std": [], "extra": ["std"]}
    assert not manifest.get("dev-dependencies")
    assert manifest["package"]["autotests"] is False and manifest["package"]["autobenches"] is False
    assert manifest["package"]["metadata"]["sleepy-coder"]["check-tests"] is False
    # An optional dependency the registry has stays, with its feature.
    kept = tomllib.loads(standalone_manifest(TINYLIB_MANIFEST, {"tinydep", "absent"}))
    assert "absent" in kept["dependencies"] and kept["features"]["extra"] == ["absent", "std"]


def test_a_copied_crate_builds_against_its_registry_offline_and_reports_the_planted_error(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry")
    assert package_names(registry_crates(root)) == {"tinydep", "tinylib"}
    assert 'directory = "' in standalone_config(root)
    work = tmp_path / "work"
    source = CrateSource(root, "tinylib-0.2.0", "src/count.rs")
    write_crate_case(work, source, TINYLIB_COUNT)
    crate = locate_crate(work)
    assert crate.check_tests is False
    assert check(crate, tmp_path / "target").success  # tinydep resolved from the registry, offline
    write_crate_case(work, source, TINYLIB_COUNT.replace("let mut sum", "let sum"))
    result = check(crate, tmp_path / "target")
    assert [(d.code, d.spans[0].file) for d in result.errors] == [("E0596", "src/count.rs")]
    assert (work / "src/lib.rs").read_text() == (root / "tinylib-0.2.0/src/lib.rs").read_text()
    assert not (work / ".cargo-checksum.json").exists()
