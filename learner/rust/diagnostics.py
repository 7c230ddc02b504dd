"""rustc JSON diagnostics -> typed records.

Pure parsing, no processes: ``toolchain.py`` runs cargo/rustc and hands the lines here.
Both shapes are accepted: cargo's ``{"reason": "compiler-message", "message": {...}}``
wrapper and rustc's bare diagnostic objects. Lines that are not diagnostics (artifacts,
build-script output, ``build-finished``, plain text) are skipped, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from learner.records import Applicability, RustDiagnostic, Span

_LEVELS_KEPT = {"error", "warning", "error: internal compiler error"}


def parse_span(raw: dict[str, Any]) -> Span:
    """One rustc span; a span inside a macro expansion is moved to the macro's call site in user code."""
    while _is_external(raw.get("file_name", "")) and raw.get("expansion"):
        raw = {**raw["expansion"]["span"], "is_primary": raw.get("is_primary"), "label": raw.get("label")}
    applicability = raw.get("suggestion_applicability")
    return Span(
        file=str(raw.get("file_name", "")),
        byte_start=int(raw.get("byte_start", 0)),
        byte_end=int(raw.get("byte_end", 0)),
        line_start=int(raw.get("line_start", 0)),
        line_end=int(raw.get("line_end", 0)),
        column_start=int(raw.get("column_start", 0)),
        column_end=int(raw.get("column_end", 0)),
        is_primary=bool(raw.get("is_primary")),
        label=raw.get("label"),
        suggested_replacement=raw.get("suggested_replacement"),
        suggestion_applicability=Applicability(applicability) if applicability else None,
    )


def _is_external(file_name: str) -> bool:
    return file_name.startswith("<")


def parse_diagnostic(raw: dict[str, Any], target: str | None = None) -> RustDiagnostic:
    code = raw.get("code")
    return RustDiagnostic(
        level=str(raw.get("level", "")),
        message=str(raw.get("message", "")),
        code=code.get("code") if isinstance(code, dict) else None,
        rendered=raw.get("rendered") or "",
        spans=tuple(parse_span(s) for s in raw.get("spans") or ()),
        children=tuple(parse_diagnostic(c) for c in raw.get("children") or ()),
        target=target,
    )


def iter_json_objects(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """JSON objects among ``lines``; anything that is not a JSON object is skipped."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            yield obj


def parse_messages(lines: Iterable[str]) -> list[RustDiagnostic]:
    """Errors and warnings from cargo or rustc JSON output, deduplicated across targets.

    ``cargo check --all-targets`` reports an error in a file shared by the lib and its test
    target twice; the same error is one record here. Summary lines ("aborting due to ...",
    "For more information ...") are dropped.
    """
    found: dict[str, RustDiagnostic] = {}
    for obj in iter_json_objects(lines):
        target = None
        if "reason" in obj:
            if obj.get("reason") != "compiler-message" or not isinstance(obj.get("message"), dict):
                continue
            target = (obj.get("target") or {}).get("name")
            obj = obj["message"]
        if "$message_type" in obj and obj["$message_type"] != "diagnostic":
            continue
        diag = parse_diagnostic(obj, target)
        if diag.level not in _LEVELS_KEPT or _is_summary(diag):
            continue
        found.setdefault(diag.key, diag)
    return list(found.values())


def _is_summary(diag: RustDiagnostic) -> bool:
    return not diag.spans and (
        diag.message.startswith("aborting due to")
        or diag.message.startswith("For more information")
        or diag.message.endswith("warnings emitted")
        or diag.message.endswith("warning emitted")
    )


def errors(diagnostics: Iterable[RustDiagnostic]) -> list[RustDiagnostic]:
    return [d for d in diagnostics if d.is_error]


def error_codes(diagnostics: Iterable[RustDiagnostic]) -> list[str]:
    """Codes of the errors, in order, with repeats (an error without a code is not counted)."""
    return [d.code for d in diagnostics if d.is_error and d.code]
