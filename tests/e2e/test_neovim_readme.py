"""Every Lua snippet of neovim/README.md runs, as printed, in a real headless Neovim.

The snippets are taken from the README's fenced ``lua`` blocks; only the placeholder paths are
replaced (and the test checks each replacement happened, so a README that drops or renames a
placeholder fails here instead of shipping a snippet nobody ran). Each snippet is then judged by
what a user sees: the server attaches to a Rust file of a fixture crate and publishes at least one
diagnostic (a snippet that turns ``publishDiagnostics`` off shows none: issue 13).

The same driver (``nvim_readme_driver.lua``) checks the one-line messages when the configured
Python cannot run the server, and when the server exits with an error.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.nvim_helpers import NVIM, REPO, run_lua
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate

README = REPO / "neovim" / "README.md"
README_DRIVER = Path(__file__).with_name("nvim_readme_driver.lua")

#: The placeholders a reader replaces; the test replaces them with this checkout and this Python.
DIR_PLACEHOLDER = "/path/to/sleepy-coder/neovim"
PYTHON_PLACEHOLDER = "/path/to/sleepy-coder/.venv/bin/python"

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(NVIM is None, reason="nvim is not on PATH (CI installs Debian's neovim)"),
]


@dataclass(frozen=True)
class Snippet:
    heading: str  # the README heading the block sits under
    code: str
    min_version: tuple[int, int]  # from the heading: "Neovim 0.11 and later" -> (0, 11)

    @property
    def is_spec(self) -> bool:
        """A lazy.nvim spec is a Lua table expression, not a script."""
        return self.code.lstrip().startswith("{")

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")


def readme_snippets() -> list[Snippet]:
    """The fenced ``lua`` blocks of the README, each with the heading above it."""
    snippets: list[Snippet] = []
    heading = ""
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.strip() == "```lua":
            end = lines.index("```", i + 1)
            found = re.search(r"Neovim (\d+)\.(\d+)", heading)
            version = (int(found.group(1)), int(found.group(2))) if found else (0, 7)
            snippets.append(Snippet(heading, "\n".join(lines[i + 1 : end]) + "\n", version))
            i = end
        i += 1
    return snippets


SNIPPETS = readme_snippets()


def substituted(code: str) -> str:
    """The snippet with this checkout's plugin and this Python, by plain replacement."""
    assert PYTHON_PLACEHOLDER in code, f"the snippet no longer names the Python placeholder {PYTHON_PLACEHOLDER}"
    assert DIR_PLACEHOLDER in code, f"the snippet no longer names the plugin placeholder {DIR_PLACEHOLDER}"
    code = code.replace(PYTHON_PLACEHOLDER, sys.executable).replace(DIR_PLACEHOLDER, str(REPO / "neovim"))
    assert "/path/to/" not in code, f"a placeholder this test does not know is left: {code}"
    assert "'" not in sys.executable and "'" not in str(REPO), "paths with quotes would change the Lua"
    return code


def nvim_version() -> tuple[int, int, int]:
    first = subprocess.run([str(NVIM), "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
    found = re.search(r"v(\d+)\.(\d+)\.(\d+)", first)
    assert found, first
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


def run_nvim(tmp_path: Path, init: str, extra_env: dict[str, str], name: str = "result") -> dict:
    """Headless Neovim with ``-u init`` (a snippet, an empty init.lua, or NONE), then the driver."""
    cwd = Path(extra_env["SC_FILE"]).parent if "SC_FILE" in extra_env else tmp_path
    work = tmp_path / name
    work.mkdir(exist_ok=True)
    return run_lua(README_DRIVER, work, cwd, extra_env, init=init)


def fixture_file(tmp_path: Path) -> Path:
    crate = make_crate(tmp_path / "readme-crate", {"src/main.rs": MOVED_VALUE_BIN})
    return crate / "src" / "main.rs"


def test_the_readme_has_one_configuration_per_neovim_line() -> None:
    """A 0.11+ snippet and a 0.7 snippet, and none that turns the server's diagnostics off."""
    assert sorted(s.min_version for s in SNIPPETS) == [(0, 7), (0, 11)], [s.heading for s in SNIPPETS]
    for snippet in SNIPPETS:
        assert not re.search(r"publishDiagnostics\s*=\s*false", snippet.code), snippet.heading
    [spec] = [s for s in SNIPPETS if s.is_spec]
    assert spec.min_version == (0, 11) and "lazy.nvim" in spec.heading


@pytest.mark.parametrize("snippet", [s for s in SNIPPETS if s.is_spec], ids=lambda s: s.id)
def test_the_lazy_spec_is_a_table_with_the_plugin_dir(snippet: Snippet, tmp_path: Path) -> None:
    """Any Neovim evaluates the spec (``return <spec>``): dir is the plugin, ft rust, config a function."""
    spec_file = tmp_path / "spec.lua"
    spec_file.write_text(substituted(snippet.code))
    (tmp_path / "init.lua").write_text("")
    result = run_nvim(tmp_path, str(tmp_path / "init.lua"), {"SC_MODE": "spec-shape", "SC_SPEC": str(spec_file)})
    assert result["spec"] == {
        "dir": str(REPO / "neovim"),
        "dir_is_directory": True,
        "ft": "rust",
        "config": "function",
    }


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.id)
def test_readme_snippet_attaches_and_publishes_diagnostics(snippet: Snippet, tmp_path: Path) -> None:
    found = nvim_version()
    if found[:2] < snippet.min_version:
        need, have = ".".join(map(str, snippet.min_version)), ".".join(map(str, found))
        pytest.skip(f"the snippet under {snippet.heading!r} needs Neovim {need}+; nvim on PATH is {have}")
    main = fixture_file(tmp_path)
    code = substituted(snippet.code)
    if snippet.is_spec:
        spec_file = tmp_path / "spec.lua"
        spec_file.write_text(code)
        init = tmp_path / "init.lua"
        init.write_text("")  # the user's init.lua, where lazy.nvim would be set up
        env = {"SC_MODE": "spec", "SC_SPEC": str(spec_file), "SC_FILE": str(main)}
    else:
        init = tmp_path / "init.lua"
        init.write_text(code)
        env = {"SC_MODE": "script", "SC_FILE": str(main)}
    result = run_nvim(tmp_path, str(init), env)

    assert result["filetype"] == "rust"
    assert result["attached"], f"sleepy-coder did not attach: {result['messages']}"
    ours = [d for d in result["diagnostics"] if d["source"] == "sleepy-coder"]
    assert ours, f"no diagnostic from sleepy-coder (publishDiagnostics off?): {result}"
    assert any(d["code"] == "E0382" for d in ours), ours
    assert result["commands"], "the :SleepyCoder* commands were not created"
    assert not [m for m in result["messages"] if m["level"] == 4], result["messages"]  # no ERROR


def _python_without_the_package(tmp_path: Path) -> Path:
    """This Python with no site-packages (-S) and no PYTHONPATH or cwd on sys.path (-I)."""
    wrapper = tmp_path / "bare-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    wrapper.chmod(0o755)
    probe = subprocess.run([str(wrapper), "-c", "import lsp_server"], capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0, "the bare Python still imports lsp_server"
    return wrapper


def _setup_run(tmp_path: Path, setup_lua: str, expect: str) -> dict:
    main = fixture_file(tmp_path)
    return run_nvim(
        tmp_path,
        "NONE",
        {"SC_MODE": "setup", "SC_SETUP": setup_lua, "SC_FILE": str(main), "SC_EXPECT": f"message:{expect}"},
    )


def test_a_python_without_the_package_is_named_and_no_client_starts(tmp_path: Path) -> None:
    python = _python_without_the_package(tmp_path)
    result = _setup_run(
        tmp_path,
        f"require('sleepy_coder').setup({{ python = '{python}', commands = false }})",
        "cannot import lsp_server",
    )
    assert result["matched"], result["messages"]
    [message] = [m for m in result["messages"] if "cannot import" in m["message"]]
    assert message["level"] == 4  # ERROR
    assert message["message"].startswith(
        f"sleepy-coder: {python} cannot import lsp_server (ModuleNotFoundError: No module named 'lsp_server'): "
        "install sleepy-coder into that Python (scripts/setup.sh)"
    ), message
    assert result["clients"] == 0 and result.get("attach") is None  # JSON drops a nil
    assert not [m for m in result["messages"] if "quit with exit code" in m["message"]]


def test_a_missing_python_is_named(tmp_path: Path) -> None:
    python = tmp_path / "no-such-venv" / "bin" / "python"
    setup = f"require('sleepy_coder').setup({{ python = '{python}', commands = false }})"
    result = _setup_run(tmp_path, setup, "not an executable")
    assert result["matched"], result["messages"]
    [message] = [m for m in result["messages"] if "not an executable" in m["message"]]
    expected = f"sleepy-coder: cannot start the server: {python} is not an executable"
    assert message["message"].startswith(expected), message
    assert result["clients"] == 0


def test_a_server_that_exits_with_an_error_points_at_the_log(tmp_path: Path) -> None:
    result = _setup_run(
        tmp_path,
        "require('sleepy_coder').setup({ cmd = { 'sh', '-c', 'echo boom >&2; exit 3' }, commands = false })",
        "exited with code 3",
    )
    assert result["matched"], result["messages"]
    [message] = [m for m in result["messages"] if "exited with code 3" in m["message"]]
    assert message["level"] == 4 and ":LspLog" in message["message"], message


def test_restart_stops_the_server_and_attaches_a_new_one(tmp_path: Path) -> None:
    """:SleepyCoderRestart: the old client exits, a new one serves the same buffer and publishes."""
    main = fixture_file(tmp_path)
    setup = f"require('sleepy_coder').setup({{ python = '{sys.executable}', settings = {{ modelEnabled = false }} }})"
    result = run_nvim(
        tmp_path,
        "NONE",
        {"SC_MODE": "setup", "SC_SETUP": setup, "SC_FILE": str(main), "SC_EXPECT": "diagnostics", "SC_RESTART": "1"},
    )
    assert result["attached"] and result["diagnostics"], result
    restart = result["restart"]
    assert restart["new_client"] and restart["new"] != restart["old"], restart
    assert restart["clients"] == 1, "the old client is gone"
    assert restart["diagnostics"] >= 1, "the new server published the diagnostics again"
    assert restart["messages"] == ["sleepy-coder: restarted: 1 server stopped, 1 started for 1 buffer"], restart
