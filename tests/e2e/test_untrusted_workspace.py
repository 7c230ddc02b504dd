"""In a workspace the user does not trust, the server runs no cargo (no build script, no proc macro) and
says why, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.lsp_helpers import open_file, start, stop, wait_until
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate


async def test_an_untrusted_workspace_is_not_checked_and_the_user_is_told(tmp_path: Path) -> None:
    crate = make_crate(tmp_path / "untrusted", {"src/main.rs": MOVED_VALUE_BIN})
    (crate / "build.rs").write_text('fn main() { std::fs::write("BUILD_SCRIPT_RAN", "yes").unwrap(); }\n')
    client, _ = await start(crate, "neovim", {"trusted": False, "modelEnabled": False})
    try:
        uri = open_file(client, crate / "src" / "main.rs")
        await wait_until(lambda: [m for m in client.messages if "not trusted" in m.message])
        await asyncio.sleep(1.5)  # past the check debounce: nothing may have run
        assert not client.diagnostics.get(uri)
        assert not (crate / "BUILD_SCRIPT_RAN").exists()
        assert len([m for m in client.messages if "not trusted" in m.message]) == 1
    finally:
        await stop(client)
