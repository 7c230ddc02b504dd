"""Helpers for the end-to-end tests: start the real server over stdio, wait for things, apply edits."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from learner.config import Settings
from learner.eval.simulation.editor import edits_for as edits_for
from learner.eval.simulation.editor import parse_code_actions_like_editors
from learner.store import Store

T = TypeVar("T")

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server"])
#: The two clients the editors ship: VS Code (UTF-16 positions) and Neovim 0.11 (picks UTF-8).
CLIENTS = ("visual-studio-code", "neovim")


async def start(root: Path, client_name: str, options: dict[str, Any]) -> tuple[LanguageClient, str]:
    """A running, initialised server for the crate at ``root``; returns (client, position encoding)."""
    client = await SERVER.start()
    parse_code_actions_like_editors(client)
    result = await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(client_name),
            initialization_options=options,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        )
    )
    client.server_capabilities = result.capabilities  # type: ignore[attr-defined]
    return client, encoding_of(result)


def encoding_of(result: types.InitializeResult) -> str:
    """The position encoding the server chose (UTF-16 when it does not say)."""
    kind = result.capabilities.position_encoding
    return str(getattr(kind, "value", kind) or "utf-16")


async def stop(client: LanguageClient) -> None:
    await client.shutdown_session()
    await client.stop()


async def wait_until(probe: Callable[[], Any], timeout: float = 30.0, every: float = 0.05) -> Any:
    """Poll ``probe`` (sync or async) until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {probe}")
        await asyncio.sleep(every)


def open_file(client: LanguageClient, path: Path, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="rust", version=version, text=path.read_text())
        )
    )
    return uri


def save_file(client: LanguageClient, path: Path, text: str, version: int) -> None:
    """Write ``text`` as the editor would: a full-text change, the file on disk, then didSave."""
    uri = path.as_uri()
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    path.write_text(text)
    client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))


async def code_actions(
    client: LanguageClient, uri: str, diagnostic: types.Diagnostic
) -> list[types.CodeAction | types.Command]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic]),
        )
    )
    return list(result or [])


def open_store() -> Store:
    """The server's store file (under this test's SLEEPY_CODER_HOME), opened from the test process."""
    return Store.open(Settings())
