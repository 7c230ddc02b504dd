"""The model's prompt and how its answer becomes edits. Training uses exactly this format.

The prompt shows regions, not whole files: the item around the error plus the items the
diagnostic's secondary spans point to (a type's definition, a trait, a called function,
possibly in another file). Each region is numbered; the model answers with one fenced
```rust block per region it changes, headed ``### Region N``. The answer becomes edits of
those regions only, so a missing derive is fixed on the type's definition wherever it lives.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from learner import items
from learner.items import Region
from learner.records import Edit, Route, RustDiagnostic
from learner.source import read_source

SYSTEM_PROMPT = (
    "You are an expert Rust programmer. You fix compile errors with the smallest correct change. "
    "Never delete code to silence an error, never add todo!(), unimplemented!(), unsafe or #[allow]. "
    "Answer only with the corrected code: for each region you change, a line `### Region N` "
    "followed by the whole corrected region in a ```rust block."
)
#: Secondary regions shown besides the region of the error, at most.
MAX_RELATED = 3


@dataclass(frozen=True)
class PromptRegion:
    region: Region
    text: str


@dataclass(frozen=True)
class FixPrompt:
    """What the model sees for one error, and the regions its answer may replace."""

    messages: tuple[dict[str, str], ...]
    regions: tuple[PromptRegion, ...]

    @property
    def prompt_hash(self) -> str:
        h = hashlib.sha256()
        for message in self.messages:
            h.update(message["role"].encode() + b"\0" + message["content"].encode() + b"\0")
        return h.hexdigest()[:16]


def collect_regions(root: Path, diagnostic: RustDiagnostic) -> list[PromptRegion]:
    """The error's item first, then the distinct items its secondary spans point to (in the crate)."""
    primary = diagnostic.primary_span
    if primary is None:
        return []
    found: list[PromptRegion] = []
    cache: dict[str, bytes] = {}

    def add(file: str, start: int, end: int) -> None:
        path = root / file
        if file.startswith("/") or ".." in Path(file).parts or not path.is_file():
            return  # std library or dependency sources are not the user's to edit
        if file not in cache:
            cache[file] = read_source(path).data
        region = items.region_at(file, cache[file], start, end)
        if any(region.overlaps(r.region) for r in found):
            return
        found.append(PromptRegion(region, region.text(cache[file]).replace("\r\n", "\n")))

    add(primary.file, primary.byte_start, primary.byte_end)
    for span in diagnostic.secondary_spans:
        if len(found) > MAX_RELATED:
            break
        add(span.file, span.byte_start, span.byte_end)
    return found


def build_prompt(
    diagnostic: RustDiagnostic,
    route: Route,
    regions: list[PromptRegion],
    history: list[tuple[str, str]] | None = None,
) -> FixPrompt:
    """Chat messages for one error.

    ``history``: earlier attempts as (the model's answer, what the compiler said about it), oldest
    first; they become assistant/user turns so a retry sees why its last answer failed.
    """
    parts = [
        f"Fix this Rust compile error (error family: {route.name}).",
        f"Hint: {route.hint}",
        "",
        "Compiler output:",
        "```",
        diagnostic.rendered.strip() or f"error[{diagnostic.code}]: {diagnostic.message}",
        "```",
    ]
    for number, region in enumerate(regions, start=1):
        parts += [
            "",
            f"### Region {number}: {region.region.file}, {region.region.label}",
            "```rust",
            region.text.rstrip("\n"),
            "```",
        ]
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(parts)}]
    for answer, feedback in history or []:
        messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": feedback})
    return FixPrompt(tuple(messages), tuple(regions))


def format_answer(regions: list[tuple[int, str]]) -> str:
    """The answer format (used for training targets): ``### Region N`` + a rust block each."""
    blocks = [f"### Region {n}\n```rust\n{text.rstrip(chr(10))}\n```" for n, text in regions]
    return "\n\n".join(blocks)


def retry_feedback(reason: str, new_errors: tuple[RustDiagnostic, ...]) -> str:
    """What the model is told after a failed attempt: why it was refused and what rustc said."""
    rendered = "\n".join(d.rendered.strip() or d.message for d in new_errors[:2])
    shown = f"```\n{rendered}\n```\n" if rendered else ""
    return f"That change was rejected: {reason}.\n{shown}Answer again in the same format."


_BLOCK = re.compile(r"```(?:rust|rs)?[ \t]*\n(.*?)```", re.DOTALL)
_HEADER = re.compile(r"###\s*Region\s*(\d+)", re.IGNORECASE)


def parse_answer(answer: str, prompt: FixPrompt) -> tuple[Edit, ...]:
    """Edits from the model's answer; blocks without a header are taken in region order.

    An unterminated final block (generation stopped at the token limit) is ignored rather than
    half-applied.
    """
    edits: list[Edit] = []
    next_unlabelled = 1
    for match in _BLOCK.finditer(answer):
        before = answer[: match.start()]
        headers = _HEADER.findall(before.split("```")[-1] if "```" in before else before)
        number = int(headers[-1]) if headers else next_unlabelled
        next_unlabelled = number + 1
        if not 1 <= number <= len(prompt.regions):
            continue
        region = prompt.regions[number - 1]
        new_text = match.group(1)
        if not new_text.endswith("\n") and region.text.endswith("\n"):
            new_text += "\n"
        if new_text != region.text:
            r = region.region
            edits.append(Edit(r.file, r.byte_start, r.byte_end, new_text))
    unique: dict[tuple[str, int], Edit] = {}
    for edit in edits:
        unique[(edit.file, edit.byte_start)] = edit
    return tuple(unique.values())
