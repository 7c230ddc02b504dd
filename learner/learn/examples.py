"""The training example: one typed record from the curriculum to the trainer, the gate and the benchmarks.

An example is a prompt made exactly as the editor makes one (:func:`learner.fix.prompt.build_prompt`
over the regions the error points at) and the answer the model should give
(:func:`learner.fix.prompt.format_answer` of the code that fixes it). Both sources of examples
meet here: a fix the user accepted or edited (:func:`from_accepted_fix`, the code the user
kept is the target) and a rustc-confirmed mutation of correct code (:func:`from_regions`).
Training sets are JSON Lines of :meth:`TrainingExample.to_json`; :meth:`TrainingExample.from_json`
reads them back and names the field that is missing or wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from learner.errors import SleepyCoderError
from learner.fix.prompt import PromptRegion, build_prompt, format_answer
from learner.fix.router import ROUTES, route_for_code
from learner.records import FALLBACK_ROUTE, Route, RustDiagnostic
from learner.rust import items
from learner.store import AcceptedFix

#: Where an example came from: the user's own accepted or edited fix, or a mutation of correct code.
SOURCES = ("store", "mutation")


class ExampleFormatError(SleepyCoderError):
    """A training-set row is not a training example (the message names the field)."""


@dataclass(frozen=True)
class TrainingExample:
    """One (prompt, answer) pair and what it was made from."""

    route: str
    #: The chat messages the model sees (``{"role", "content"}``), as at inference.
    messages: tuple[dict[str, str], ...]
    answer: str
    #: ``store`` (a user's fix) or ``mutation`` (curriculum).
    source: str
    #: Loss weight: an edited fix (the user's own code) weighs most.
    weight: float
    #: The file the example's error is in, relative to its crate.
    file: str
    #: The code shown broken (a whole file for mutations, the enclosing item for a user's fix) and fixed.
    broken: str
    fixed: str
    code: str | None = None
    #: The mutation operator, or ``user-accepted`` / ``user-edited``.
    operator: str = ""
    #: Where the correct code came from (``docs:...``, ``crate:...``, ``store:<fix id>``).
    origin: str = ""
    rendered: str = ""
    #: The store's fix id, for a user's fix (the gate's held-out split and forget use it).
    fix_id: str | None = None
    edition: str = "2021"
    #: A short content id for mutations (their cache key).
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON object a training set stores (``kind`` is the source, for older readers)."""
        row = asdict(self)
        row["messages"] = [dict(m) for m in self.messages]
        row["kind"] = row.pop("source")
        row.update(row.pop("extra"))
        return {k: v for k, v in row.items() if v is not None}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> TrainingExample:
        """Parse a stored row; :class:`ExampleFormatError` names what is wrong."""
        try:
            messages = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in row["messages"])
            known = {f for f in cls.__dataclass_fields__ if f not in ("source", "messages", "extra")}
            values = {k: row[k] for k in known if k in row}
            source = str(row.get("kind", row.get("source", "mutation")))
            extra = {k: v for k, v in row.items() if k not in known and k not in ("kind", "source", "messages")}
            example = cls(messages=messages, source=source, extra=extra, **values)
        except (KeyError, TypeError) as exc:
            raise ExampleFormatError(f"not a training example: missing or malformed {exc}") from exc
        for name in ("route", "answer", "file", "broken", "fixed"):
            if not isinstance(getattr(example, name), str):
                raise ExampleFormatError(f"not a training example: {name!r} must be text")
        if source not in SOURCES:
            raise ExampleFormatError(f"not a training example: unknown source {source!r}")
        return example


def from_regions(
    diagnostic: RustDiagnostic,
    route: Route,
    regions: Sequence[PromptRegion],
    fixed_regions: Sequence[tuple[int, str]],
    *,
    source: str,
    file: str,
    broken: str,
    fixed: str,
    operator: str,
    origin: str,
    weight: float = 1.0,
    fix_id: str | None = None,
    edition: str = "2021",
) -> TrainingExample:
    """The example for ``diagnostic`` shown over ``regions``, whose answer replaces region N with its text."""
    prompt = build_prompt(diagnostic, route, list(regions))
    return TrainingExample(
        route=route.name,
        messages=tuple(prompt.messages),
        answer=format_answer(list(fixed_regions), list(regions)),
        source=source,
        weight=weight,
        file=file,
        broken=broken,
        fixed=fixed,
        code=diagnostic.code,
        operator=operator,
        origin=origin,
        rendered=diagnostic.rendered,
        fix_id=fix_id,
        edition=edition,
    )


def from_accepted_fix(fix: AcceptedFix) -> TrainingExample | None:
    """A fix the user accepted (or edited) as an example, or None when it cannot teach (no route, no code).

    The prompt shows the recorded enclosing item as region 1, as the editor's request did, and
    the target is the code the user kept.
    """
    route = ROUTES.get(fix.route) or route_for_code(fix.code)
    if route.name == FALLBACK_ROUTE or not fix.before_text.strip() or not fix.target.strip():
        return None
    before = fix.before_text.encode()
    label = items.region_at(fix.file, before, 0, 0).label
    region = PromptRegion(items.Region(fix.file, 0, len(before), label), fix.before_text)
    diagnostic = RustDiagnostic(level="error", message=fix.message, code=fix.code, rendered=fix.rendered)
    return from_regions(
        diagnostic,
        route,
        [region],
        [(1, fix.target)],
        source="store",
        file=fix.file,
        broken=fix.before_text,
        fixed=fix.target,
        operator="user-edited" if fix.edited else "user-accepted",
        origin=f"store:{fix.fix_id}",
        weight=fix.weight,
        fix_id=fix.fix_id,
    )
