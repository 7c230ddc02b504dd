"""The editor's side of the language server protocol, for a simulated user: the real server over stdio.

What VS Code or Neovim does for a user, and nothing more: open and save files (a full-text
change, the file on disk, ``didSave``), keep the diagnostics the server publishes, ask for code
actions on one diagnostic, resolve the model's action, run the commands an action carries
(``sleepy-coder.accept`` / ``reject``) and the learner's ``sleepy-coder.learnNow``. The server is
``python -m lsp_server`` in its own process with its own data home (``SLEEPY_CODER_HOME``), so
everything it records goes through the same code paths as a real editor's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import typing
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from learner.errors import SleepyCoderError

#: The server's notification after a hot swap (the editors' clients listen for it too).
ADAPTERS_CHANGED = "sleepy-coder/adaptersChanged"
LEARN_NOW = "sleepy-coder.learnNow"


class EditorError(SleepyCoderError):
    """The server did not answer as an editor expects (it exited, or a wait timed out)."""


def parse_code_actions_like_editors(client: Any) -> None:
    """Tell ``Command`` from ``CodeAction`` the way editors do (``command`` is a string only in a
    Command); the stock converter takes any object with a ``command`` key for a Command."""
    converter = client.protocol._converter

    def structure(obj: Any, _: Any) -> types.Command | types.CodeAction:
        kind = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
        return converter.structure(obj, kind)

    converter.register_structure_hook(typing.Union[types.Command, types.CodeAction], structure)  # noqa: UP007


def position_offset(text: str, position: types.Position, encoding: str = "utf-16") -> int:
    """Character offset of an LSP position in ``text`` under ``encoding`` (this client asks for UTF-16)."""
    lines = text.split("\n")
    start = sum(len(line) + 1 for line in lines[: position.line])
    line = lines[min(position.line, len(lines) - 1)] if lines else ""
    units = 0
    for i, ch in enumerate(line):
        if units >= position.character:
            return start + i
        units += {"utf-8": len(ch.encode()), "utf-32": 1}.get(encoding, len(ch.encode("utf-16-le")) // 2)
    return start + len(line)


def apply_text_edits(text: str, edits: Sequence[types.TextEdit], encoding: str = "utf-16") -> str:
    """``text`` with ``edits`` applied (LSP ranges refer to the text before any of them)."""
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        a, b = position_offset(text, edit.range.start, encoding), position_offset(text, edit.range.end, encoding)
        text = text[:a] + edit.new_text + text[b:]
    return text


def edits_for(edit: types.WorkspaceEdit | None, uri: str) -> list[types.TextEdit]:
    """The text edits a WorkspaceEdit makes to ``uri``, from ``changes`` or ``documentChanges``."""
    if edit is None:
        return []
    if edit.changes is not None:
        return list(edit.changes.get(uri, []))
    found: list[types.TextEdit] = []
    for change in edit.document_changes or []:
        if isinstance(change, types.TextDocumentEdit) and change.text_document.uri == uri:
            found.extend(e for e in change.edits if isinstance(e, types.TextEdit))
    return found


def touched_uris(edit: types.WorkspaceEdit | None) -> set[str]:
    """Every document a WorkspaceEdit changes."""
    if edit is None:
        return set()
    if edit.changes is not None:
        return set(edit.changes)
    return {c.text_document.uri for c in edit.document_changes or [] if isinstance(c, types.TextDocumentEdit)}


class Editor:
    """One editor window on one crate, talking to a fresh server process."""

    def __init__(self, root: Path, home: Path, options: dict[str, Any], log_path: Path) -> None:
        self.root = root
        self.home = home
        self.options = options
        self.log_path = log_path
        self.client = LanguageClient("sleepy-coder-simulated-user", "1")
        parse_code_actions_like_editors(self.client)
        self.diagnostics: dict[str, list[types.Diagnostic]] = {}
        #: How many times diagnostics were published per URI (a new check's result is a new count).
        self.published: dict[str, int] = {}
        self.messages: list[str] = []
        self.adapter_changes: list[Any] = []
        self.versions: dict[str, int] = {}
        self._log: IO[bytes] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._register()

    def _register(self) -> None:
        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = list(params.diagnostics)
            self.published[params.uri] = self.published.get(params.uri, 0) + 1

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def show_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params.message)

        @self.client.feature(ADAPTERS_CHANGED)
        def adapters_changed(params: Any) -> None:
            self.adapter_changes.append(params)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        env = {**os.environ, "SLEEPY_CODER_HOME": str(self.home)}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        await self.client.start_io(sys.executable, "-m", "lsp_server", env=env, cwd=str(self.root))
        server = self.client._server
        if server is not None and server.stderr is not None:
            self._stderr_task = asyncio.create_task(self._drain(server.stderr))
        result = await asyncio.wait_for(
            self.client.initialize_async(
                types.InitializeParams(
                    capabilities=types.ClientCapabilities(
                        text_document=types.TextDocumentClientCapabilities(
                            code_action=types.CodeActionClientCapabilities(
                                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                                    code_action_kind=types.ClientCodeActionKindOptions(value_set=["quickfix"])
                                ),
                                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
                                data_support=True,
                            ),
                            publish_diagnostics=types.PublishDiagnosticsClientCapabilities(),
                        ),
                        general=types.GeneralClientCapabilities(position_encodings=["utf-16"]),
                    ),
                    initialization_options=self.options,
                    root_uri=self.root.as_uri(),
                    workspace_folders=[types.WorkspaceFolder(uri=self.root.as_uri(), name=self.root.name)],
                )
            ),
            timeout=60,
        )
        encoding = result.capabilities.position_encoding
        if str(getattr(encoding, "value", encoding) or "utf-16") != "utf-16":
            raise EditorError(f"the server chose position encoding {encoding}; this client speaks utf-16")
        self.client.initialized(types.InitializedParams())

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            if self._log is not None:
                self._log.write(line)
                self._log.flush()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.shutdown_async(None), timeout=30)
            self.client.exit(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.stop(), timeout=30)
        if self._stderr_task is not None:
            self._stderr_task.cancel()
        if self._log is not None:
            self._log.close()

    # ------------------------------------------------------------------ documents

    def uri(self, rel: str) -> str:
        return (self.root / rel).as_uri()

    def open(self, rel: str) -> str:
        path = self.root / rel
        uri = path.as_uri()
        if uri in self.versions:
            return uri
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="rust", version=1, text=path.read_text())
            )
        )
        return uri

    def save(self, rel: str, text: str) -> int:
        """Write ``text`` as the editor would: a full-text change, the file on disk, then didSave.
        Returns how many diagnostics publications the URI had before (wait for one more)."""
        uri = self.open(rel)
        before = self.published.get(uri, 0)
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        (self.root / rel).write_text(text)
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        return before

    async def checked(self, rel: str, published_before: int, timeout: float) -> list[types.Diagnostic]:
        """The diagnostics of the first check after a save (its publication for ``rel``)."""
        uri = self.uri(rel)
        await wait_until(lambda: self.published.get(uri, 0) > published_before, timeout, f"diagnostics for {rel}")
        return self.diagnostics.get(uri, [])

    # ------------------------------------------------------------------ actions and commands

    async def code_actions(self, rel: str, diagnostic: types.Diagnostic) -> list[types.CodeAction]:
        uri = self.uri(rel)
        result = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=diagnostic.range,
                context=types.CodeActionContext(diagnostics=[diagnostic], only=[types.CodeActionKind.QuickFix]),
            )
        )
        return [a for a in result or [] if isinstance(a, types.CodeAction)]

    async def resolve(self, action: types.CodeAction, timeout: float) -> types.CodeAction:
        """Resolve ``action``; after ``timeout`` the request is withdrawn as editors do when the user
        moves on (``$/cancelRequest``), and :class:`TimeoutError` raised."""
        request_id = f"resolve-{uuid.uuid4().hex}"
        answer = self.client.protocol.send_request_async(types.CODE_ACTION_RESOLVE, action, msg_id=request_id)
        try:
            result: types.CodeAction = await asyncio.wait_for(answer, timeout=timeout)
        except TimeoutError:
            self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
            raise
        return result

    async def run_command(self, command: types.Command, timeout: float = 60) -> Any:
        return await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=command.command, arguments=list(command.arguments or []))
            ),
            timeout=timeout,
        )

    async def learn_now(self) -> Any:
        return await self.run_command(types.Command(title="Learn now", command=LEARN_NOW))


async def wait_until(probe: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``probe`` until it returns something truthy; :class:`EditorError` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise EditorError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)
