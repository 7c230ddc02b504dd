"""cargo runs offline and with the crate's own configuration, in the user's tree and in scratch copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from learner.errors import CheckFailed
from learner.rust.check import check
from learner.rust.crate import locate_crate
from learner.rust.scratch import ScratchCrate
from tests.rust_fixtures import make_crate

#: Compiles only when cargo applied the ancestor's ``.cargo/config.toml`` (it sets the cfg).
NEEDS_CONFIG = (
    '#[cfg(not(sleepy_probe))]\ncompile_error!("the crate\'s cargo configuration was not applied");\nfn main() {}\n'
)


def test_a_dependency_that_is_not_cached_fails_offline_and_says_how_to_fetch_it(tmp_path: Path) -> None:
    root = make_crate(tmp_path / "c", {"src/main.rs": "fn main() {}\n"}, deps='definitely_not_cached_xyz = "1"')
    with pytest.raises(CheckFailed) as failure:
        check(locate_crate(root), tmp_path / "target", timeout_s=120)
    message = str(failure.value)
    assert "offline" in message and "cargo fetch" in message


def test_the_scratch_copy_uses_the_configuration_of_the_crates_ancestors(tmp_path: Path) -> None:
    (tmp_path / "company" / ".cargo").mkdir(parents=True)
    (tmp_path / "company" / ".cargo" / "config.toml").write_text('[build]\nrustflags = ["--cfg", "sleepy_probe"]\n')
    root = make_crate(tmp_path / "company" / "team" / "crate", {"src/main.rs": NEEDS_CONFIG})
    crate = locate_crate(root)
    assert check(crate, tmp_path / "user-target", timeout_s=120).errors == []
    scratch = ScratchCrate(crate, tmp_path / "cache" / "mirror", tmp_path / "cache" / "target")
    scratch.sync()
    assert scratch.check(120).errors == []
