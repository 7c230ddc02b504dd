"""Records <-> lsprotocol: positions, diagnostics, edits and code actions.

The one module (with ``handlers.py``) that builds lsprotocol objects. Everything here is a
pure function of records and text, so it is unit-tested without a server.

Positions: rustc reports 1-based lines and 1-based columns counted in *characters*, and byte
offsets into the raw file; LSP wants 0-based lines and columns counted in the negotiated
position encoding (UTF-16 code units unless the client asked for another). Columns are
therefore converted through the line's text, never copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from learner.records import Edit, Span
from learner.records import RustDiagnostic as RustDiag
from lsp_server.fixes import ErrorOffers, ModelResult, Offer, ShownOffer

SOURCE = "sleepy-coder"
ACCEPT_COMMAND = "sleepy-coder.accept"
REJECT_COMMAND = "sleepy-coder.reject"
#: Attached to a model action that found no fix: running it shows why (clients do nothing visible
#: with an action that has neither an edit nor a command).
EXPLAIN_COMMAND = "sleepy-coder.explain"
REJECT_TITLE = "Reject this fix (sleepy-coder)"
_ERROR_CODE = re.compile(r"E\d{4}")

#: Maps an absolute file path to the URI the editor knows it by.
UriOf = Callable[[Path], str]
#: The document version each open document's fixes were computed for (uri -> version); None
#: means the client cannot check versions and gets plain ``changes``.
Versions = Mapping[str, int | None] | None


# ----------------------------------------------------------------------------- positions


def encoding_name(kind: object) -> str:
    """``utf-8``, ``utf-16`` or ``utf-32`` from a PositionEncodingKind (or its string)."""
    value = str(getattr(kind, "value", kind) or "utf-16").lower()
    return value if value in ("utf-8", "utf-16", "utf-32") else "utf-16"


def units(text: str, encoding: str) -> int:
    """Length of ``text`` in the code units of ``encoding``."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def split_lines(text: str) -> list[str]:
    """Lines as LSP counts them (``\\n``, ``\\r\\n``), without their line breaks."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def char_position(lines: Sequence[str], line1: int, column1: int, encoding: str) -> types.Position:
    """The LSP position of rustc's 1-based (line, character column); clamped to the text."""
    line = min(max(line1 - 1, 0), max(len(lines) - 1, 0))
    text = lines[line] if lines else ""
    chars = min(max(column1 - 1, 0), len(text))
    return types.Position(line=line, character=units(text[:chars], encoding))


def byte_position(data: bytes, offset: int, encoding: str) -> types.Position:
    """The LSP position of a byte offset into a file's raw bytes."""
    offset = min(max(offset, 0), len(data))
    line = data.count(b"\n", 0, offset)
    start = data.rfind(b"\n", 0, offset) + 1
    prefix = data[start:offset].decode("utf-8", "replace")
    return types.Position(line=line, character=units(prefix, encoding))


def span_range(span: Span, lines: Sequence[str], encoding: str) -> types.Range:
    return types.Range(
        start=char_position(lines, span.line_start, span.column_start, encoding),
        end=char_position(lines, span.line_end, span.column_end, encoding),
    )


def ranges_overlap(a: types.Range, b: types.Range) -> bool:
    """True when the ranges share a position (touching counts, as editors send empty cursor ranges)."""

    def key(p: types.Position) -> tuple[int, int]:
        return (p.line, p.character)

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


# ----------------------------------------------------------------------------- diagnostics


def error_code(code: object) -> str | None:
    """A rustc error code from an LSP diagnostic code: ``E0382``, ``rustc(E0382)``, ``e0382``..."""
    if not isinstance(code, str):
        return None
    found = _ERROR_CODE.search(code.upper())
    return found.group(0) if found else None


@dataclass(frozen=True)
class Sources:
    """The text of the crate's files as they were checked, to place ranges (``rel -> bytes``)."""

    root: Path
    data: Mapping[str, bytes]

    def lines(self, rel: str) -> list[str]:
        return split_lines(self.data.get(rel, b"").decode("utf-8", "replace"))


def related_spans(diag: RustDiag) -> list[tuple[Span, str]]:
    """Secondary spans with what they say: their label, else their note's (or the error's) message."""
    found = [(s, s.label or diag.message) for s in diag.spans if not s.is_primary]
    for child in diag.children:
        found.extend((s, s.label or child.message) for s in child.spans if s.suggested_replacement is None)
    return found


def full_message(diag: RustDiag) -> str:
    """rustc's message as rust-analyzer shows it: the headline, the primary span's label
    (``expected `u32`, found `usize` ``) and the notes and help that point nowhere else."""
    lines = [diag.message]
    span = diag.primary_span
    if span is not None and span.label and span.label != diag.message:
        lines.append(span.label)
    for child in diag.children:
        located = any(s.suggested_replacement is None and s.label for s in child.spans)
        if child.message and not located:
            lines.append(f"{child.level}: {child.message}")
    return "\n".join(lines)


def to_diagnostic(diag: RustDiag, sources: Sources, uri_of: UriOf, encoding: str) -> types.Diagnostic:
    """An LSP diagnostic for a rustc message whose primary span is in ``sources``."""
    span = diag.primary_span
    assert span is not None, "only located diagnostics are published"
    related = [
        types.DiagnosticRelatedInformation(
            location=types.Location(
                uri=uri_of(sources.root / s.file), range=span_range(s, sources.lines(s.file), encoding)
            ),
            message=message,
        )
        for s, message in related_spans(diag)
        if s.file in sources.data
    ]
    code = diag.code
    return types.Diagnostic(
        range=span_range(span, sources.lines(span.file), encoding),
        severity=types.DiagnosticSeverity.Error if diag.is_error else types.DiagnosticSeverity.Warning,
        code=code,
        code_description=(
            types.CodeDescription(href=f"https://doc.rust-lang.org/error_codes/{code}.html")
            if code and _ERROR_CODE.fullmatch(code)
            else None
        ),
        source=SOURCE,
        message=full_message(diag),
        related_information=related or None,
        data={"key": diag.key},
    )


def requested(
    errors: Sequence[RustDiag],
    sources: Sources,
    request_range: types.Range,
    context: Iterable[types.Diagnostic],
    encoding: str,
) -> list[RustDiag]:
    """The server's errors a code-action request is about: those in its range, plus those the client
    sent in its context (ours, rustc's through rust-analyzer, ...) matched by error code and range."""
    wanted = list(context)
    keys = {d.data.get("key") for d in wanted if d.source == SOURCE and isinstance(d.data, dict)}
    chosen = []
    for diag in errors:
        span = diag.primary_span
        if span is None:
            continue
        where = span_range(span, sources.lines(span.file), encoding)
        if (
            diag.key in keys
            or ranges_overlap(where, request_range)
            or any(error_code(c.code) == diag.code and ranges_overlap(where, c.range) for c in wanted)
        ):
            chosen.append(diag)
    return chosen


# ----------------------------------------------------------------------------- edits and actions


def workspace_edit(
    edits: Iterable[Edit],
    root: Path,
    data: Mapping[str, bytes],
    uri_of: UriOf,
    encoding: str,
    versions: Versions = None,
) -> types.WorkspaceEdit:
    """A WorkspaceEdit of byte-offset edits, placed against the bytes they were computed on.

    With ``versions`` it is ``documentChanges`` naming the document version each edit was computed
    for, so the client refuses it once the document changed instead of overwriting later edits.
    """
    changes: dict[str, list[types.TextEdit]] = {}
    for edit in edits:
        source = data.get(edit.file, b"")
        changes.setdefault(uri_of(root / edit.file), []).append(
            types.TextEdit(
                range=types.Range(
                    start=byte_position(source, edit.byte_start, encoding),
                    end=byte_position(source, edit.byte_end, encoding),
                ),
                new_text=edit.new_text,
            )
        )
    if versions is None:
        return types.WorkspaceEdit(changes=changes)
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=versions.get(uri)),
                edits=list(text_edits),
            )
            for uri, text_edits in changes.items()
        ]
    )


def accept_command(shown: ShownOffer) -> types.Command:
    return types.Command(title="Record the accepted fix", command=ACCEPT_COMMAND, arguments=[shown.offer_id])


def offer_action(
    shown: ShownOffer, diagnostic: types.Diagnostic, uri_of: UriOf, encoding: str, versions: Versions = None
) -> types.CodeAction:
    """A verified fix as a quick fix whose command records that the user applied this offer."""
    offer: Offer = shown.offer
    candidate = offer.candidate
    return types.CodeAction(
        title=candidate.title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        is_preferred=candidate.preferred or None,
        edit=workspace_edit(candidate.edits, offer.root, offer.sources, uri_of, encoding, versions),
        command=accept_command(shown),
    )


def reject_action(shown: ShownOffer, diagnostic: types.Diagnostic) -> types.CodeAction:
    return types.CodeAction(
        title=f"{REJECT_TITLE}: {shown.title}",
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        command=types.Command(title=REJECT_TITLE, command=REJECT_COMMAND, arguments=[shown.offer_id]),
    )


def model_title(route: str) -> str:
    return f"Fix with sleepy-coder ({route})"


def model_action(route: str, diagnostic: types.Diagnostic, uri: str, version: int | None, key: str):
    """The unresolved model action: its edit is computed by ``codeAction/resolve``."""
    return types.CodeAction(
        title=model_title(route),
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        data={"uri": uri, "version": version, "key": key},
    )


def code_actions(
    entries: Iterable[ErrorOffers],
    sources: Sources,
    uri: str,
    version: int | None,
    uri_of: UriOf,
    encoding: str,
    *,
    model: bool,
    versions: Versions = None,
) -> list[types.CodeAction]:
    """Per error: rustc's verified fixes, a reject action for each offered fix, and the model action
    (resolved already when the model answered for this version, else left for ``codeAction/resolve``;
    offered only while ``model`` says the model is available)."""
    actions: list[types.CodeAction] = []
    for entry in entries:
        diagnostic = to_diagnostic(entry.diagnostic, sources, uri_of, encoding)
        shown = [*entry.offers, entry.model_offer] if model and entry.model_offer is not None else list(entry.offers)
        actions.extend(offer_action(o, diagnostic, uri_of, encoding, versions) for o in shown)
        if model and entry.model_offer is None:
            action = model_action(entry.route, diagnostic, uri, version, entry.diagnostic.key)
            if entry.model is not None:  # answered already (in the background): say why, no placeholder
                action = resolved_action(action, entry.model, None, uri_of, encoding)
            actions.append(action)
        actions.extend(reject_action(o, diagnostic) for o in shown)
    return actions


def wants_quickfix(only: Sequence[str] | None) -> bool:
    """Whether a request's ``context.only`` admits quick fixes."""
    return not only or any(str(k) in ("quickfix", "") or "quickfix".startswith(str(k)) for k in only)


@dataclass(frozen=True)
class FixRef:
    """What a model action's ``data`` names: one error of one document version."""

    uri: str
    version: int | None
    key: str


def fix_ref(data: Any) -> FixRef | None:
    """The reference in a model action's ``data``, or None when it is not one of ours."""
    if not isinstance(data, dict):
        return None
    uri, version, key = data.get("uri"), data.get("version"), data.get("key")
    if not isinstance(uri, str) or not isinstance(key, str) or not (version is None or isinstance(version, int)):
        return None
    return FixRef(uri, version, key)


def resolved_action(
    action: types.CodeAction,
    result: ModelResult,
    shown: ShownOffer | None,
    uri_of: UriOf,
    encoding: str,
    versions: Versions = None,
) -> types.CodeAction:
    """The model action with its verified edit; without one, a title and an explain command that
    say why (so picking it shows the reason instead of doing nothing)."""
    if shown is None:
        action.title = f"{action.title}: {result.explanation}"
        action.edit = None
        action.command = types.Command(
            title="Why there is no fix", command=EXPLAIN_COMMAND, arguments=[result.explanation]
        )
        return action
    offer = shown.offer
    action.title = offer.candidate.title
    action.edit = workspace_edit(offer.candidate.edits, offer.root, offer.sources, uri_of, encoding, versions)
    action.command = accept_command(shown)
    return action


def offer_id_argument(args: Sequence[Any]) -> str:
    """The offer id of ``sleepy-coder.accept/reject [offerId]``; ValueError names what was wrong."""
    if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
        raise ValueError(f"expected one argument, the offer id (a string), not {list(args)!r}")
    return args[0]


def text_argument(args: Sequence[Any]) -> str:
    """The one string argument of ``sleepy-coder.explain [reason]``."""
    if len(args) != 1 or not isinstance(args[0], str):
        raise ValueError(f"expected one argument, a message (a string), not {list(args)!r}")
    return args[0]
