"""A real headless Neovim with the repo's plugin (neovim/) applies a rustc fix through sleepy-coder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.lsp_helpers import open_store
from tests.e2e.nvim_helpers import NVIM, run_lua
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(NVIM is None, reason="nvim is not on PATH (CI installs Debian's neovim)"),
]


def test_neovim_applies_rustc_fix_and_acceptance_is_recorded(tmp_path: Path) -> None:
    crate = make_crate(tmp_path / "nvim-crate", {"src/main.rs": MOVED_VALUE_BIN})
    main = crate / "src" / "main.rs"
    result = run_lua(Path(__file__).with_name("nvim_flow.lua"), tmp_path, crate, {"SC_FILE": str(main)})

    assert result["diagnostic"]["code"] == "E0382" and result["diagnostic"]["source"] == "sleepy-coder"
    assert result["picked"].startswith("rustc:")
    assert "let t = s.clone();" in main.read_text(), "the fix was applied and saved"
    assert result["status"]["store"]["accepted"] == 1
    with open_store() as store:
        [outcome] = store.outcomes(result["fix_id"])
        assert outcome.kind == "accepted" and outcome.offer_id == result["offer_id"]
