"""A scripted user in a real headless Neovim performs every kind of feedback event on fixture
crates; the store (read with ``sleepy-coder data export``) must hold exactly those events."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.nvim_helpers import NVIM, run_lua
from tests.e2e.scripted_user import EVENTS, check_export, export_rows, make_crates

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(NVIM is None, reason="nvim is not on PATH (CI installs Debian's neovim)"),
]


def test_scripted_user_in_neovim_leaves_exactly_its_events_in_the_store(tmp_path: Path) -> None:
    crate_a, crate_b = make_crates(tmp_path)
    script = Path(__file__).with_name("nvim_scripted_user.lua")
    env = {"SC_CRATE_A": str(crate_a), "SC_CRATE_B": str(crate_b)}
    result = run_lua(script, tmp_path, crate_a, env, timeout=280)

    events = result["events"]
    offer_ids = {name: events[name]["offerId"] for name, _ in EVENTS if name != "rejected"}
    assert result["rejected_title"].startswith("Reject this fix (sleepy-coder): rustc:")
    tables = export_rows()
    rejected = [r for r in tables["outcomes"] if r["kind"] == "rejected"]
    assert len(rejected) == 1
    offer_ids["rejected"] = rejected[0]["offer_id"]
    check_export(tables, offer_ids)
    assert events["derive"]["title"] == "rustc: consider annotating `Item` with `#[derive(Debug)]`"
