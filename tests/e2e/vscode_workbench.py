"""Driving a real VS Code: code-server started on 127.0.0.1 and its workbench in headless Chromium.

code-server is VS Code in a browser (``vscode-extension/e2e/install-code-server.sh`` installs
4.139.1 with the Node 24 it needs); Playwright drives Debian's Chromium (``/usr/bin/chromium``,
nothing downloaded). Every session gets a fresh user-data and extensions dir, the freshly built
``.vsix`` installed with ``code-server --install-extension``, and its own ``SLEEPY_CODER_HOME``,
so the test's store is the one the extension's server writes. The helpers act like a user:
keyboard shortcuts, the command palette, the Quick Fix menu, and reading what the workbench shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools" / "code-server"
VSIX = REPO / "vscode-extension" / "sleepy-coder.vsix"
ARTIFACTS = REPO / "test-artifacts" / "vscode"


def code_server_path() -> Path | None:
    """``$SLEEPY_CODER_CODE_SERVER``, else the one the install script put under ``.tools``."""
    configured = os.environ.get("SLEEPY_CODER_CODE_SERVER")
    candidate = Path(configured) if configured else TOOLS / "node_modules" / ".bin" / "code-server"
    return candidate if candidate.exists() else None


def chromium_path() -> Path | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return Path(found) if found else None


def missing_tools() -> str | None:
    """Why the workbench cannot run here, or None when everything it needs is installed."""
    if code_server_path() is None:
        return "code-server is not installed (run vscode-extension/e2e/install-code-server.sh)"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install chromium)"
    if not VSIX.is_file():
        return f"{VSIX} is not built (run vscode-extension/ci.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CodeServer:
    """One code-server process with its own folders; ``home`` is the extension server's data home."""

    root: Path
    settings: dict[str, Any]
    trusted: bool = True
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def env(self) -> dict[str, str]:
        code_server = code_server_path()
        assert code_server is not None
        node_bin = code_server.parent  # node@24 installs its `node` beside code-server
        return {
            **os.environ,
            "PATH": f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "SLEEPY_CODER_HOME": str(self.home),
        }

    def _cli(self, *args: str) -> list[str]:
        return [
            str(code_server_path()),
            "--user-data-dir",
            str(self.root / "user-data"),
            "--extensions-dir",
            str(self.root / "extensions"),
            *args,
        ]

    def start(self) -> None:
        user = self.root / "user-data" / "User"
        user.mkdir(parents=True, exist_ok=True)
        (user / "settings.json").write_text(json.dumps(self.settings, indent=2))
        subprocess.run(
            self._cli("--install-extension", str(VSIX)), env=self.env, check=True, capture_output=True, timeout=300
        )
        args = ["--bind-addr", f"127.0.0.1:{self.port}", "--auth", "none", "--disable-telemetry"]
        args += ["--disable-update-check", "--disable-getting-started-override"]
        if self.trusted:
            args.append("--disable-workspace-trust")
        log = (self.root / "code-server.log").open("wb")
        self.process = subprocess.Popen(
            self._cli(*args), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"code-server exited: {(self.root / 'code-server.log').read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("code-server did not answer on /healthz within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)

    def url(self, folder: Path) -> str:
        return f"http://127.0.0.1:{self.port}/?folder={folder}"


@contextlib.contextmanager
def running(server: CodeServer) -> Iterator[CodeServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def server_processes(home: Path) -> list[int]:
    """Pids of ``python -m lsp_server`` processes whose ``SLEEPY_CODER_HOME`` is ``home``."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if "lsp_server" in " ".join(cmdline) and proc.environ().get("SLEEPY_CODER_HOME") == str(home):
                found.append(proc.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, interval_s: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


class Workbench:
    """The VS Code workbench in a page, used through the keyboard and what it shows."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = name
        self.step = 0
        self.timings: dict[str, float] = {}

    def screenshot(self, label: str) -> Path:
        self.step += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.step:02d}-{re.sub(r'[^a-z0-9]+', '-', label.lower())}.png"
        self.page.screenshot(path=str(path))
        return path

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_selector(".monaco-workbench", timeout=120_000)
        self.page.wait_for_selector(".statusbar", timeout=60_000)

    def quick_input(self, keys: str, text: str) -> None:
        self.page.keyboard.press(keys)
        box = self.page.locator(".quick-input-widget input").first
        box.wait_for(state="visible", timeout=15_000)
        box.fill(text)

    def command(self, title: str) -> None:
        """Run a command from the palette by its title (``Sleepy Coder: Show Status``)."""
        self.quick_input("F1", f">{title}")
        row = self.page.locator(".quick-input-list .monaco-list-row", has_text=title).first
        row.wait_for(state="visible", timeout=15_000)
        row.click()

    def open_file(self, name: str) -> None:
        self.quick_input("Control+P", name)
        row = self.page.locator(".quick-input-list .monaco-list-row", has_text=name).first
        row.wait_for(state="visible", timeout=15_000)
        self.page.keyboard.press("Enter")
        self.page.locator(".tab", has_text=name).first.wait_for(state="visible", timeout=15_000)

    def focus_editor(self) -> None:
        """Put the keyboard in the active editor (a panel may have taken it)."""
        self.page.locator(".editor-group-container.active .monaco-editor .view-lines").first.click()

    def go_to_line(self, line: int, column: int = 1) -> None:
        self.focus_editor()
        self.quick_input("Control+P", f":{line}:{column}")  # Quick Open's go-to-line mode
        self.page.keyboard.press("Enter")

    def quick_fix_items(self) -> list[str]:
        """Open the Quick Fix menu at the cursor and return its entries' titles."""
        self.page.keyboard.press("Control+.")
        menu = self.page.locator(".action-widget:visible").first
        menu.wait_for(state="visible", timeout=30_000)
        rows = menu.locator(".monaco-list-row")
        wait_for("Quick Fix entries", lambda: rows.count() > 0, 30)
        return [t.strip() for t in rows.all_inner_texts()]

    def quick_fix_items_with(self, wanted: str, timeout_s: float = 30) -> list[str]:
        """The Quick Fix menu once it lists an entry starting with ``wanted``, reopened as a user would.

        The server publishes diagnostics before rustc's suggestions are verified (a few tenths of a
        second later); a menu opened in between lists only the model's entry.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            items = self.quick_fix_items()
            if any(i.startswith(wanted) for i in items) or time.monotonic() > deadline:
                return items
            self.close_menus()
            time.sleep(0.5)

    def pick_quick_fix(self, starts_with: str) -> None:
        self.page.locator(".action-widget:visible .monaco-list-row", has_text=starts_with).first.click()

    def close_menus(self) -> None:
        self.page.keyboard.press("Escape")

    def problems(self) -> list[str]:
        """The Problems panel's rows (message, source, position), opening the panel if needed."""
        panel = self.page.locator(".markers-panel")
        if not panel.is_visible():
            self.page.keyboard.press("Control+Shift+M")
            panel.wait_for(state="visible", timeout=15_000)
        return [t.replace("\n", " ") for t in panel.locator(".monaco-list-row").all_inner_texts()]

    def notifications(self) -> list[str]:
        return [t.replace("\n", " ") for t in self.page.locator(".notification-toast").all_inner_texts()]

    def status_bar(self) -> list[str]:
        return [t.strip() for t in self.page.locator(".statusbar-item").all_inner_texts() if t.strip()]
