"""LSP handlers: params -> records, one call into the server, records -> lsprotocol.

Each handler is a few lines; the work lives on :class:`~lsp_server.server.SleepyServer`
(state, threads), in ``analysis.py`` (blocking work) and ``convert.py`` (lsprotocol). Commands
are advertised through ``executeCommandProvider`` by pygls from the ``@server.command`` list.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server import commands, convert

# A runtime import (not TYPE_CHECKING): pygls resolves command annotations with get_type_hints.
from lsp_server.server import SleepyServer

CODE_ACTION_OPTIONS = types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix], resolve_provider=True)


def _offer_id(args: tuple[Any, ...]) -> str:
    try:
        return convert.offer_id_argument(args)
    except ValueError as exc:
        raise JsonRpcInvalidParams(str(exc)) from exc


def _versions(ls: SleepyServer, versions: dict[str, int | None]) -> convert.Versions:
    """Document versions for edits, when the client can refuse a stale edit (``documentChanges``)."""
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace is not None else None
    return versions if edit is not None and edit.document_changes else None


def register(server: SleepyServer) -> None:
    """Attach every feature and command to ``server``."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: SleepyServer, params: types.InitializeParams) -> None:
        ls.configure(params.initialization_options)

    @server.feature(types.INITIALIZED)
    def initialized(ls: SleepyServer, params: types.InitializedParams) -> None:
        ls.start()

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: SleepyServer, params: None) -> None:
        ls.stop()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: SleepyServer, params: types.DidChangeConfigurationParams) -> None:
        ls.configure(params.settings)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SleepyServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.activity()
        ls.note_focus(params.text_document.uri, 0)
        ls.document_opened(params.text_document.uri)
        ls.schedule_check(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: SleepyServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.activity()
        ls.schedule_check(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SleepyServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.document_changed(params)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, CODE_ACTION_OPTIONS)
    def code_action(ls: SleepyServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        ls.activity()
        ls.note_focus(params.text_document.uri, params.range.start.line)
        view = ls.view_for(params.text_document.uri)
        if view is None or not convert.wants_quickfix(params.context.only):
            return None  # no check of this version yet: offer nothing rather than wait
        errors = convert.requested(view.errors, view.sources, params.range, params.context.diagnostics, ls.encoding)
        entries = ls.offers_for(view, errors)
        versions = _versions(ls, view.versions)
        model = ls.model_available()
        return convert.code_actions(
            entries, view.sources, view.uri, view.version, ls.uri_for, ls.encoding, model=model, versions=versions
        )

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: SleepyServer, action: types.CodeAction) -> types.CodeAction:
        ref = convert.fix_ref(action.data)
        if ref is None:
            return action
        result, shown = await ls.resolve_model_fix(ref)
        view = ls.view_for(ref.uri)
        versions = _versions(ls, view.versions if view is not None else {ref.uri: ref.version})
        return convert.resolved_action(action, result, shown, ls.uri_for, ls.encoding, versions)

    @server.command(convert.ACCEPT_COMMAND)
    async def accept(ls: SleepyServer, *args: Any) -> dict[str, Any]:
        return await ls.accept(_offer_id(args))

    @server.command(convert.REJECT_COMMAND)
    async def reject(ls: SleepyServer, *args: Any) -> dict[str, Any]:
        return await ls.reject(_offer_id(args))

    @server.command(convert.EXPLAIN_COMMAND)
    def explain(ls: SleepyServer, *args: Any) -> str:
        try:
            return ls.explain(convert.text_argument(args))
        except ValueError as exc:
            raise JsonRpcInvalidParams(str(exc)) from exc

    @server.command("sleepy-coder.learnNow")
    async def learn_now(ls: SleepyServer, *args: Any) -> str:
        return await ls.learn_now()

    @server.command("sleepy-coder.status")
    async def status(ls: SleepyServer, *args: Any) -> dict[str, Any]:
        return await ls.blocking(commands.status, ls.settings, ls.runtime, ls.recorder.store)

    @server.command("sleepy-coder.forgetData")
    async def forget_data(ls: SleepyServer, *args: Any) -> dict[str, int]:
        return await ls.forget()

    @server.command("sleepy-coder.openReport")
    def open_report(ls: SleepyServer, *args: Any) -> dict[str, str] | None:
        return commands.report_path(ls.settings)
