"""The scripted user's fixture crates and the rows its events must leave in the store.

Shared by the headless-Neovim script (``nvim_scripted_user.lua``) and the same script through
pytest-lsp with VS Code's capabilities (``test_scripted_user_vscode.py``): each performs these
events, then ``sleepy-coder data export`` must show exactly one outcome row per event, with the
code the user kept, and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.rust_fixtures import make_crate

INVENTORY = """pub struct Item {
    pub n: u32,
}
"""

#: Six errors with rustc fixes: two in ``main`` (for "a second fix in the same function"), one per
#: other function, and one (E0277) whose fix is a derive in inventory.rs.
MAIN = """mod inventory;

use inventory::Item;

fn show(item: &Item) {
    println!("{:?}", item);
}

fn twice() {
    let a = String::from("a");
    let b = a;
    println!("{} {}", a, b);
}

fn undo_me() {
    let y = 1;
    y = 2;
    println!("{y}");
}

fn turned_down() {
    let c = String::from("c");
    let d = c;
    println!("{} {}", c, d);
}

fn main() {
    let s = String::from("s");
    let t = s;
    println!("{} {}", s, t);
    let x = 1;
    x = 2;
    println!("{x}");
    show(&Item { n: 1 });
    twice();
    undo_me();
    turned_down();
}
"""

#: (event, outcome kind) in the order the script performs them.
EVENTS = (
    ("first", "accepted"),
    ("second", "accepted"),
    ("edited", "edited"),
    ("derive", "edited"),
    ("reverted", "reverted"),
    ("rejected", "rejected"),
    ("second_crate", "accepted"),
)


def make_crates(tmp_path: Path) -> tuple[Path, Path]:
    """Two identical crates, so the first fix is the same fix (same content hash) in both."""
    files = {"src/main.rs": MAIN, "src/inventory.rs": INVENTORY}
    return make_crate(tmp_path / "crate-a", files, name="scripted"), make_crate(
        tmp_path / "crate-b", files, name="scripted"
    )


def export_rows(env: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``sleepy-coder data export`` (the real CLI, in its own process), rows grouped by table."""
    proc = subprocess.run(
        [sys.executable, "-m", "learner", "data", "export"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or dict(os.environ),
        check=True,
    )
    tables: dict[str, list[dict[str, Any]]] = {}
    for line in proc.stdout.splitlines()[1:]:
        entry = json.loads(line)
        tables.setdefault(entry["table"], []).append(entry["row"])
    return tables


def check_export(tables: dict[str, list[dict[str, Any]]], offer_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Exactly one outcome per event, the right kind on the right offer, the kept code; returns the rows."""
    outcomes = tables.get("outcomes", [])
    by_offer = {row["offer_id"]: row for row in outcomes}
    assert len(outcomes) == len(EVENTS), [(r["kind"], r["offer_id"]) for r in outcomes]
    for event, kind in EVENTS:
        row = by_offer.get(offer_ids[event])
        assert row is not None, f"no outcome for the {event!r} event"
        assert row["kind"] == kind, (event, row)
    edited = by_offer[offer_ids["edited"]]
    assert [r["text"] for r in json.loads(edited["final_ranges"])] == [".to_owned()"]
    assert edited["final_code"].startswith("fn twice() {") and "let b = a.to_owned();" in edited["final_code"]
    assert "fn main()" not in edited["final_code"], "the kept code is the fixed item, not the whole file"
    derive = by_offer[offer_ids["derive"]]
    [kept] = json.loads(derive["final_ranges"])
    assert kept == {"file": "src/inventory.rs", "text": "#[derive(Debug, Clone)]\n"}
    assert derive["final_code"].endswith("#[derive(Debug, Clone)]\npub struct Item {\n    pub n: u32,\n}\n")
    for event in ("first", "second", "reverted", "rejected", "second_crate"):
        row = by_offer[offer_ids[event]]
        assert row["final_code"] is None and row["final_ranges"] is None, (event, row)
    # The same fix in two crates: two offers of one fix, both counted.
    first, again = by_offer[offer_ids["first"]], by_offer[offer_ids["second_crate"]]
    assert first["fix_id"] == again["fix_id"] and first["offer_id"] != again["offer_id"]
    offers = {row["offer_id"]: row for row in tables.get("offers", [])}
    assert set(offer_ids.values()) <= set(offers), "every event belongs to a recorded offer"
    return outcomes
