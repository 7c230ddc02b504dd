"""The scripted user's events through the real server over stdio with VS Code's capabilities:
incremental didChange edits, versioned workspace edits, didOpen of a file a fix changes, undo as
the reverse change. ``sleepy-coder data export`` must then hold exactly those events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.lsp_helpers import code_actions, edits_for, open_file, open_store, start, stop, wait_until
from tests.e2e.scripted_user import EVENTS, check_export, export_rows, make_crates

pytestmark = pytest.mark.timeout(300)


class Editor:
    """What VS Code keeps per document: its text and version, and the changes it sends."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.paths: dict[str, Path] = {}

    def open(self, path: Path) -> str:
        uri = open_file(self.client, path)
        self.texts[uri], self.versions[uri], self.paths[uri] = path.read_text(), 1, path
        return uri

    def change(self, uri: str, start: types.Position, end: types.Position, text: str) -> None:
        """One incremental change (UTF-16 positions; the fixtures are ASCII)."""
        old = self.texts[uri]
        lines = old.split("\n")
        a = sum(len(line) + 1 for line in lines[: start.line]) + start.character
        b = sum(len(line) + 1 for line in lines[: end.line]) + end.character
        self.texts[uri] = old[:a] + text + old[b:]
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=types.Range(start=start, end=end), text=text)
                ],
            )
        )

    def replace(self, uri: str, old: str, new: str) -> None:
        text = self.texts[uri]
        at = text.index(old)
        self.change(uri, _position(text, at), _position(text, at + len(old)), new)

    def apply(self, edit: types.WorkspaceEdit | None, uri: str) -> None:
        for text_edit in sorted(
            edits_for(edit, uri), key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
        ):
            self.change(uri, text_edit.range.start, text_edit.range.end, text_edit.new_text)

    def save_all(self) -> None:
        for uri, path in self.paths.items():
            if path.read_text() != self.texts[uri]:
                path.write_text(self.texts[uri])
                self.client.text_document_did_save(
                    types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
                )


def _position(text: str, offset: int) -> types.Position:
    line = text.count("\n", 0, offset)
    return types.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def _in_fn(editor: Editor, uri: str, name: str, code: str) -> types.Diagnostic | None:
    lines = editor.texts[uri].split("\n")
    first = next(i for i, line in enumerate(lines) if line.startswith(f"fn {name}("))
    last = next(i for i in range(first, len(lines)) if lines[i].startswith("}"))
    found = [
        d for d in editor.client.diagnostics.get(uri, []) if d.code == code and first <= d.range.start.line <= last
    ]
    return found[0] if found else None


async def _action(editor: Editor, uri: str, name: str, code: str, prefix: str) -> types.CodeAction:
    diag = await wait_until(lambda: _in_fn(editor, uri, name, code), timeout=60)

    async def offered() -> Any:
        actions = await code_actions(editor.client, uri, diag)
        return next((a for a in actions if isinstance(a, types.CodeAction) and a.title.startswith(prefix)), None)

    return await wait_until(offered, timeout=60)


async def _run(editor: Editor, action: types.CodeAction) -> dict[str, Any]:
    assert action.command is not None
    params = types.ExecuteCommandParams(command=action.command.command, arguments=list(action.command.arguments or []))
    return await editor.client.workspace_execute_command_async(params)


async def _accept(editor: Editor, uri: str, name: str, code: str, *, also: str | None = None) -> dict[str, Any]:
    """Apply the rustc fix as VS Code does (open the other file it changes, apply, run its command)."""
    action = await _action(editor, uri, name, code, "rustc:")
    if also is not None:
        editor.apply(action.edit, editor.open(Path(also)))
    editor.apply(action.edit, uri)
    answer = await _run(editor, action)
    assert answer["recorded"] is True and answer["outcome"] == "accepted"
    return answer


async def _fixed(editor: Editor, uri: str, name: str, code: str) -> None:
    editor.save_all()
    await wait_until(lambda: _in_fn(editor, uri, name, code) is None, timeout=60)


async def _outcome(offer_id: str, kind: str) -> None:
    with open_store() as store:
        await wait_until(lambda: (o := store.outcome(offer_id)) is not None and o.kind == kind, timeout=60)


async def test_scripted_user_through_vscode_capabilities_leaves_exactly_its_events(tmp_path: Path) -> None:
    crate_a, crate_b = make_crates(tmp_path)
    client, _ = await start(crate_a, "visual-studio-code", {"modelEnabled": False})
    editor = Editor(client)
    try:
        main = editor.open(crate_a / "src" / "main.rs")
        ids: dict[str, str] = {}
        ids["first"] = (await _accept(editor, main, "main", "E0382"))["offerId"]
        await _fixed(editor, main, "main", "E0382")
        ids["second"] = (await _accept(editor, main, "main", "E0384"))["offerId"]
        await _fixed(editor, main, "main", "E0384")

        ids["edited"] = (await _accept(editor, main, "twice", "E0382"))["offerId"]
        await _fixed(editor, main, "twice", "E0382")
        editor.replace(main, ".clone()", ".to_owned()")  # the user selects the fix and retypes it
        editor.save_all()
        await _outcome(ids["edited"], "edited")

        inventory = crate_a / "src" / "inventory.rs"
        ids["derive"] = (await _accept(editor, main, "show", "E0277", also=str(inventory)))["offerId"]
        await _fixed(editor, main, "show", "E0277")
        editor.replace(inventory.as_uri(), "#[derive(Debug)]", "#[derive(Debug, Clone)]")
        editor.save_all()
        await _outcome(ids["derive"], "edited")

        before_undo = editor.texts[main]
        ids["reverted"] = (await _accept(editor, main, "undo_me", "E0384"))["offerId"]
        applied = editor.texts[main]
        at = next(i for i, (x, y) in enumerate(zip(before_undo, applied, strict=False)) if x != y)
        inserted = len(applied) - len(before_undo)
        editor.change(main, _position(applied, at), _position(applied, at + inserted), "")  # Ctrl+Z
        await _outcome(ids["reverted"], "reverted")

        reject = await _action(editor, main, "turned_down", "E0382", "Reject this fix")
        answer = await _run(editor, reject)
        assert answer["outcome"] == "rejected" and reject.title.endswith(answer["title"])
        ids["rejected"] = answer["offerId"]

        other = editor.open(crate_b / "src" / "main.rs")
        ids["second_crate"] = (await _accept(editor, other, "main", "E0382"))["offerId"]
        await _outcome(ids["second_crate"], "accepted")
        assert set(ids) == {name for name, _ in EVENTS}
    finally:
        await stop(client)
    check_export(export_rows(), ids)
