"""One bad document or message affects only itself: a NUL byte in a URI and a second ``initialize``
leave diagnostics and code actions for every other document working (real server over stdio)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.e2e.lsp_helpers import code_actions, open_file, start, stop, wait_until
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate


def _e0382(client: object, uri: str) -> list[types.Diagnostic]:
    return [d for d in client.diagnostics.get(uri, []) if d.code == "E0382"]  # type: ignore[attr-defined]


async def _rustc_actions(client: LanguageClient, uri: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
    actions = await code_actions(client, uri, diagnostic)
    return [a for a in actions if isinstance(a, types.CodeAction) and a.title.startswith("rustc:")]


async def test_a_nul_byte_in_one_uri_does_not_stop_diagnostics_for_other_crates(tmp_path: Path) -> None:
    crate = make_crate(tmp_path / "good", {"src/main.rs": MOVED_VALUE_BIN})
    client, _ = await start(crate, "visual-studio-code", {"modelEnabled": False})
    try:
        bad = (tmp_path / "bad").as_uri() + "/src/ma%00in.rs"
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=bad, language_id="rust", version=1, text="fn main() {}\n")
            )
        )
        uri = open_file(client, crate / "src" / "main.rs")
        [diagnostic] = await wait_until(lambda: _e0382(client, uri))
        assert await wait_until(lambda: _rustc_actions(client, uri, diagnostic))
    finally:
        await stop(client)


async def test_a_second_initialize_is_refused_and_the_open_documents_keep_their_actions(tmp_path: Path) -> None:
    crate = make_crate(tmp_path / "good", {"src/main.rs": MOVED_VALUE_BIN})
    client, _ = await start(crate, "visual-studio-code", {"modelEnabled": False})
    try:
        uri = open_file(client, crate / "src" / "main.rs")
        [diagnostic] = await wait_until(lambda: _e0382(client, uri))
        assert await wait_until(lambda: _rustc_actions(client, uri, diagnostic))
        with pytest.raises(JsonRpcException):
            await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
        assert await _rustc_actions(client, uri, diagnostic), "the open document kept its code actions"
    finally:
        await stop(client)
