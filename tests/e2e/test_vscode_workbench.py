"""The extension inside a real VS Code (code-server 4.139.1, headless Chromium), used like a user would.

On a copy of ``examples/typical-errors``: the Problems panel shows the crate's errors from
``sleepy-coder``; the Quick Fix menu on the E0277 line lists rustc's fix and "Fix with sleepy-coder
(trait-bound)"; applying rustc's fix changes the *other* file and, after saving, the error is gone;
Reject records a rejection; the status bar shows the state; Show Status and Restart Server work;
and ``sleepy-coder data export`` in the test's data home holds the accepted and rejected outcomes.
Two more sessions: a wrong ``sleepyCoder.python`` shows the error with Open Settings, and an
untrusted folder runs no cargo. Screenshots of every step go to ``test-artifacts/vscode/`` and
the timings to ``timings.json`` there. Skipped, with the reason printed, where code-server or
Chromium is not installed (``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.scripted_user import export_rows
from tests.e2e.vscode_workbench import (
    ARTIFACTS,
    REPO,
    CodeServer,
    Workbench,
    chromium_path,
    missing_tools,
    running,
    server_processes,
    wait_for,
)

pytestmark = pytest.mark.timeout(900)

EXAMPLE = REPO / "examples" / "typical-errors"
#: Settings every session starts with: our interpreter, no AI side panel, no model work in the background.
BASE_SETTINGS: dict[str, Any] = {
    "sleepyCoder.python": sys.executable,
    "sleepyCoder.backgroundFixes": False,
    "workbench.startupEditor": "none",
    "workbench.secondarySideBar.defaultVisibility": "hidden",
}


@pytest.fixture(scope="module")
def tools() -> None:
    reason = missing_tools()
    if reason is not None:
        print(f"\nVS Code end-to-end test skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    copy = tmp_path / "typical-errors"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("target"))
    return copy


@pytest.fixture
def browser(tools: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_path()), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def workbench(browser: Any, name: str) -> Workbench:
    return Workbench(browser.new_page(viewport={"width": 1400, "height": 900}), name)


def outcome_kinds(server: CodeServer) -> list[str]:
    """The outcomes ``sleepy-coder data export`` shows in the session's data home, sorted by kind."""
    return sorted(row["kind"] for row in export_rows({**server.env}).get("outcomes", []))


def sleepy_rows(bench: Workbench) -> list[str]:
    return [row for row in bench.problems() if "sleepy-coder" in row]


def test_a_user_fixes_and_rejects_in_vscode_and_the_store_holds_both(browser: Any, crate: Path, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    server = CodeServer(tmp_path / "session", dict(BASE_SETTINGS))
    with running(server):
        bench = workbench(browser, "user")
        started = time.monotonic()
        bench.open(server.url(crate))
        timings["workbench open (s)"] = time.monotonic() - started
        wait_for("the status bar item", lambda: any("Sleepy Coder" in s for s in bench.status_bar()), 60)
        bench.screenshot("workbench open")

        started = time.monotonic()
        bench.open_file("main.rs")
        rows = wait_for("sleepy-coder diagnostics in Problems", lambda: len(sleepy_rows(bench)) >= 2, 120)
        timings["open main.rs -> diagnostics (s)"] = time.monotonic() - started
        assert any("E0277" in r and "Debug" in r for r in sleepy_rows(bench)), rows
        assert any("E0308" in r for r in sleepy_rows(bench)), rows
        bench.screenshot("problems panel")

        bench.go_to_line(30, 22)
        started = time.monotonic()
        items = bench.quick_fix_items_with("rustc:")
        timings["Quick Fix menu (s)"] = time.monotonic() - started
        bench.screenshot("quick fix menu on E0277")
        assert any(i.startswith("rustc: consider annotating `Item` with `#[derive(Debug)]`") for i in items), items
        assert "Fix with sleepy-coder (trait-bound)" in items, items

        started = time.monotonic()
        bench.pick_quick_fix("rustc: consider annotating")
        bench.command("File: Save All")
        wait_for("E0277 gone from Problems", lambda: not [r for r in sleepy_rows(bench) if "E0277" in r], 120)
        timings["apply + save -> error gone (s)"] = time.monotonic() - started
        assert (crate / "src" / "inventory.rs").read_text().startswith("#[derive(Debug)]\npub struct Item")
        bench.screenshot("rustc fix applied in inventory.rs")

        bench.go_to_line(18, 22)
        items = bench.quick_fix_items_with("Reject this fix")
        reject = next(i for i in items if i.startswith("Reject this fix (sleepy-coder): rustc: you can convert"))
        bench.pick_quick_fix(reject)
        bench.screenshot("rejected")

        both = ["accepted", "rejected"]
        wait_for("the accept and the reject in the store", lambda: outcome_kinds(server) == both, 60)
        assert any(s.startswith("Sleepy Coder:") for s in bench.status_bar()), bench.status_bar()
        bench.command("Sleepy Coder: Show Status")
        status = wait_for("the status message", lambda: [n for n in bench.notifications() if "Recorded:" in n], 30)
        assert "1 accepted" in status[0] and "1 rejected" in status[0], status
        bench.screenshot("show status")

        [before] = wait_for("one server process", lambda: server_processes(server.home), 30)
        bench.command("Sleepy Coder: Restart Server")
        after = wait_for(
            "a new server process, the old one gone",
            lambda: (pids := server_processes(server.home)) and before not in pids and pids,
            60,
        )
        assert len(after) == 1, after
        bench.page.wait_for_timeout(1000)
        assert any(s.startswith("Sleepy Coder:") for s in bench.status_bar())
        bench.screenshot("restarted")

    assert outcome_kinds(server) == ["accepted", "rejected"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=2))
    print("\n" + "\n".join(f"{k}: {v:.2f}" for k, v in timings.items()), file=sys.stderr)


def test_a_wrong_python_setting_shows_the_error_with_open_settings(browser: Any, crate: Path, tmp_path: Path) -> None:
    settings = {**BASE_SETTINGS, "sleepyCoder.python": str(tmp_path / "nowhere" / "python")}
    server = CodeServer(tmp_path / "session", settings)
    with running(server):
        bench = workbench(browser, "wrong-python")
        bench.open(server.url(crate))
        bench.open_file("main.rs")
        toast = bench.page.locator(".notification-toast", has_text="could not start").first
        toast.wait_for(state="visible", timeout=60_000)
        assert toast.locator(".monaco-button", has_text="Open Settings").count() == 1
        bench.screenshot("server could not start")
        assert server_processes(server.home) == []


def test_an_untrusted_folder_runs_no_cargo_and_says_why(browser: Any, crate: Path, tmp_path: Path) -> None:
    settings = {**BASE_SETTINGS, "security.workspace.trust.startupPrompt": "never"}
    server = CodeServer(tmp_path / "session", settings, trusted=False)
    with running(server):
        bench = workbench(browser, "untrusted")
        bench.open(server.url(crate))
        wait_for("Restricted Mode in the status bar", lambda: any("Restricted" in s for s in bench.status_bar()), 60)
        bench.open_file("main.rs")
        bench.page.wait_for_timeout(8000)  # long enough for a trusted folder's first check (~2 s above)
        assert sleepy_rows(bench) == []
        assert server_processes(server.home) == []
        assert not (crate / "target").exists() and not (server.home / "cache" / "targets").exists()
        # VS Code says why: Restricted Mode, and Sleepy Coder among the extensions it disabled for it.
        assert bench.page.get_by_text("Restricted Mode is intended for safe code browsing").count() >= 1
        bench.command("Workspaces: Manage Workspace Trust")
        bench.page.locator("a.monaco-link", has_text=re.compile(r"\d+ extensions?")).first.click()
        listed = bench.page.locator(".extension-list-item", has_text="Sleepy Coder").first
        listed.wait_for(state="visible", timeout=30_000)
        bench.screenshot("restricted mode lists sleepy coder as disabled")
