"""The model's prompt and how its answer becomes edits. Training uses exactly this format.

The prompt shows regions, not whole files: the item around the error plus the items the
diagnostic's secondary spans point to (a type's definition, a trait, a called function,
possibly in another file). Each region is a ```rust block whose first line is a
``// file: PATH (ITEM)`` comment, and the error's line ends with ``// <- error[CODE]``.
The model answers with the corrected blocks; each becomes an edit of its region only, so a
missing derive is fixed on the type's definition wherever it lives.

How the model answers is an :class:`AnswerFormat`, chosen by name (``settings.answer_format``,
or a strategy's own): ``item`` (above: the corrected regions, what the adapters are trained on)
``search-replace`` (blocks naming only the lines that change, matched back into the regions
exactly or line by line ignoring indentation), or ``line-range`` (the regions shown with line
numbers, the answer naming the ranges it replaces). All end as edits of whole regions, so the
verifier, the ranking and the editor see one kind of edit whatever the format.

The shape was chosen on our own data, never on benchmark cases. Qwen2.5-Coder-0.5B echoed its
input unchanged when asked for numbered-region answers under a long instruction. On a dev set of
curriculum mutations of the Rust book's examples (9 errors, one greedy attempt each) the plain
request with the *whole* rendered error gave 3/9 verified fixes with or without the error-line
marker, against 0/9 and 1/9 when rustc's ``help:`` sections were cut. Small numbers: they only
ruled out the shortened diagnostic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from learner.errors import SleepyCoderError
from learner.records import Edit, Route, RustDiagnostic
from learner.rust import items
from learner.rust.items import Region
from learner.rust.source import read_source

SYSTEM_PROMPT = "You are an expert Rust programmer. You fix compile errors with small, correct changes."
#: Secondary regions shown besides the region of the error, at most.
MAX_RELATED = 3


#: Appended to the error's line in the region the model sees, so a small model knows where to look.
ERROR_MARKER = "  // <- error"
#: Our markers, and whatever the model turned them into (``// <- fixed``), are removed from answers.
_MARKER_RE = re.compile(r"[ \t]*// <- [^\n]*")


@dataclass(frozen=True)
class PromptRegion:
    """A region to show: ``text`` is the code as it is, ``shown`` the same with the error line marked."""

    region: Region
    text: str
    shown: str = ""
    #: The file's line number of the region's first line (what rustc's rendered error counts in).
    first_line: int = 1

    @property
    def display(self) -> str:
        return self.shown or self.text


@dataclass(frozen=True)
class FixPrompt:
    """What the model sees for one error, and the regions its answer may replace."""

    messages: tuple[dict[str, str], ...]
    regions: tuple[PromptRegion, ...]
    #: The :class:`AnswerFormat` the prompt asks for (its name).
    answer_format: str = "item"

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
        first_line = cache[file].count(b"\n", 0, region.byte_start) + 1
        found.append(PromptRegion(region, region.text(cache[file]).replace("\r\n", "\n"), first_line=first_line))

    add(primary.file, primary.byte_start, primary.byte_end)
    if found:
        found[0] = _mark_error_line(found[0], cache[primary.file], primary.byte_end, diagnostic.code)
    for span in diagnostic.secondary_spans:
        if len(found) > MAX_RELATED:
            break
        add(span.file, span.byte_start, span.byte_end)
    return found


def _mark_error_line(region: PromptRegion, data: bytes, offset: int, code: str | None) -> PromptRegion:
    """Append ``// <- error[CODE]`` to the line holding ``offset`` (its end, for multi-line spans)."""
    r = region.region
    end = data.find(b"\n", max(offset - 1, r.byte_start), r.byte_end)
    if end < 0:
        return region
    marker = f"{ERROR_MARKER}[{code}]" if code else ERROR_MARKER
    marked = data[r.byte_start : end] + marker.encode() + data[end : r.byte_end]
    return PromptRegion(r, region.text, marked.decode("utf-8").replace("\r\n", "\n"), region.first_line)


def region_header(region: Region) -> str:
    """The first line of a region's code block; answers are matched to regions by it."""
    return f"// file: {region.file} ({region.label})"


def build_prompt(
    diagnostic: RustDiagnostic,
    route: Route,
    regions: list[PromptRegion],
    history: list[tuple[str, str]] | None = None,
    answer_format: str = "item",
) -> FixPrompt:
    """Chat messages for one error, asking for an answer in ``answer_format``.

    ``history``: earlier attempts as (the model's answer, what the compiler said about it), oldest
    first; they become assistant/user turns so a retry sees why its last answer failed.
    """
    chosen = answer_format_named(answer_format)
    instruction = chosen.instruction
    shown = chosen.show(regions)
    blocks = [
        f"```rust\n{region_header(r.region)}\n{text.rstrip(chr(10))}\n```"
        for r, text in zip(regions, shown, strict=True)
    ]
    hint = f"Hint: {route.hint}\n\n" if route.hint else ""
    # The whole rendered error, help sections included: rustc's own suggested code is often
    # there and the model copies it (measured below in the module docstring).
    rendered = diagnostic.rendered.strip() or f"error[{diagnostic.code}]: {diagnostic.message}"
    user = f"Fix the Rust compile error.\n\n```\n{rendered}\n```\n\n{hint}" + "\n\n".join(blocks) + f"\n\n{instruction}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    for answer, feedback in history or []:
        messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": feedback})
    return FixPrompt(tuple(messages), tuple(regions), answer_format)


def format_answer(
    changed: Sequence[tuple[Region | PromptRegion | int, str]], regions: Sequence[PromptRegion] = ()
) -> str:
    """The answer format (training targets): one rust block per changed region, headed by its file line.

    A region may be given as a 1-based number into ``regions`` (the prompt's regions).
    """
    blocks = []
    for which, text in changed:
        region = regions[which - 1] if isinstance(which, int) and regions else which
        if isinstance(region, PromptRegion):
            region = region.region
        header = "" if isinstance(region, int) else region_header(region) + "\n"
        blocks.append(f"```rust\n{header}{text.rstrip(chr(10))}\n```")
    return "\n\n".join(blocks)


def retry_feedback(reason: str, new_errors: tuple[RustDiagnostic, ...]) -> str:
    """What the model is told after a failed attempt: why it was refused and what rustc said."""
    rendered = "\n".join(d.rendered.strip() or d.message for d in new_errors[:2])
    shown = f"```\n{rendered}\n```\n" if rendered else ""
    return f"That change was rejected: {reason}.\n{shown}Answer again in the same format."


_BLOCK = re.compile(r"```(?:rust|rs)?[ \t]*\n(.*?)```", re.DOTALL)
_HEADER = re.compile(r"^[ \t]*// file: (\S+) \((.*)\)[ \t]*\n")


def parse_answer(answer: str, prompt: FixPrompt) -> tuple[Edit, ...]:
    """Edits from the model's answer, read in the format its prompt asked for."""
    return answer_format_named(prompt.answer_format).parse(answer, prompt)


def parse_item_answer(answer: str, prompt: FixPrompt) -> tuple[Edit, ...]:
    """Edits from an ``item`` answer: corrected regions as rust blocks.

    A block is matched to a region by its ``// file:`` line (file and item label), else to the
    next region in order. An unterminated final block (generation stopped at the token limit)
    is ignored rather than half-applied.
    """
    edits: dict[tuple[str, int], Edit] = {}
    next_index = 0
    for match in _BLOCK.finditer(answer):
        body = match.group(1)
        index = next_index
        header = _HEADER.match(body)
        if header:
            body = body[header.end() :]
            labelled = [
                i
                for i, r in enumerate(prompt.regions)
                if r.region.file == header.group(1) and r.region.label == header.group(2)
            ]
            same_file = [i for i, r in enumerate(prompt.regions) if r.region.file == header.group(1)]
            index = (labelled or same_file or [index])[0]
        next_index = index + 1
        if not 0 <= index < len(prompt.regions):
            continue
        region = prompt.regions[index]
        new_text = _MARKER_RE.sub("", body)
        if not new_text.endswith("\n") and region.text.endswith("\n"):
            new_text += "\n"
        if new_text != region.text:
            r = region.region
            edits[(r.file, r.byte_start)] = Edit(r.file, r.byte_start, r.byte_end, new_text)
    return tuple(edits.values())


# ----------------------------------------------------------------------------- search/replace

_SEARCH_REPLACE = re.compile(
    r"^[ \t]*<{5,9}[ \t]*SEARCH[^\n]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)^[ \t]*>{5,9}[ \t]*REPLACE[^\n]*$",
    re.DOTALL | re.MULTILINE,
)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _lines(text: str) -> list[str]:
    return _MARKER_RE.sub("", text).rstrip("\n").split("\n") if text.strip() else []


def replace_lines(text: str, search: str, replacement: str) -> str | None:
    """``text`` with the first run of lines matching ``search`` replaced, or None when none matches.

    Exact first; else line by line ignoring leading and trailing blanks, the replacement moved to
    the matched lines' indentation (a small model often drops or changes it). Our error markers are
    removed from both sides, as from every answer.
    """
    wanted, new = _lines(search), _lines(replacement)
    if not wanted:
        return None
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    target = [line.strip() for line in wanted]
    for start in range(len(lines) - len(target) + 1):
        if stripped[start : start + len(target)] != target:
            continue
        pad, given = _indent(lines[start]), _indent(wanted[0])
        moved = [pad + line[len(given) :] if line.startswith(given) else pad + line.lstrip() for line in new]
        exact = lines[start : start + len(target)] == wanted
        return "\n".join(lines[:start] + (new if exact else moved) + lines[start + len(target) :])
    return None


def parse_search_replace_answer(answer: str, prompt: FixPrompt) -> tuple[Edit, ...]:
    """Edits from SEARCH/REPLACE blocks, each applied to the first region that holds its lines.

    An answer with no such block that gives corrected regions instead is read as an ``item`` answer.
    """
    blocks = _SEARCH_REPLACE.findall(answer)
    if not blocks:
        return parse_item_answer(answer, prompt)
    texts = [r.text for r in prompt.regions]
    for search, replacement in blocks:
        for i, text in enumerate(texts):
            changed = replace_lines(text, search, replacement)
            if changed is not None:
                texts[i] = changed
                break
    edits = []
    for region, text in zip(prompt.regions, texts, strict=True):
        if text != region.text:
            r = region.region
            edits.append(Edit(r.file, r.byte_start, r.byte_end, text))
    return tuple(edits)


# ----------------------------------------------------------------------------- line ranges

#: ``N| `` in front of each shown line: its line number in the file, as rustc's rendered error counts.
_NUMBER_PREFIX = re.compile(r"^[ \t]*\d+\| ?", re.MULTILINE)
_LINE_RANGE = re.compile(
    r"LINES?[ \t]+(\d+)(?:[ \t]*(?:-|to)[ \t]*(\d+))?(?:[ \t]+(?:OF|IN)[ \t]+`?([^\s`]+)`?)?[^\n]*\n"
    r"[ \t]*```(?:rust|rs)?[ \t]*\n(.*?)```",
    re.DOTALL | re.IGNORECASE,
)


def numbered_regions(regions: Sequence[PromptRegion]) -> list[str]:
    """Each region's shown text with its file line number (``N| ``) before every line."""
    shown = []
    for region in regions:
        lines = region.display.rstrip("\n").split("\n")
        shown.append("\n".join(f"{region.first_line + i}| {line}" for i, line in enumerate(lines)))
    return shown


def parse_line_range_answer(answer: str, prompt: FixPrompt) -> tuple[Edit, ...]:
    """Edits from ``REPLACE LINES a-b [OF file]`` answers, each followed by a rust block of the new
    lines, in the files' line numbers; a range is applied to the first region holding all of it (in
    ``file`` when named: two files can share numbers) and ignored when none does. An answer that
    gives whole corrected regions instead is read as an ``item`` answer (copied numbers removed)."""
    found = _LINE_RANGE.findall(answer)
    if not found:
        return parse_item_answer(_NUMBER_PREFIX.sub("", answer), prompt)
    texts = [r.text.rstrip("\n").split("\n") for r in prompt.regions]
    replacements: list[tuple[int, int, int, list[str]]] = []
    for first_text, last_text, file, body in found:
        first = int(first_text)
        last = int(last_text) if last_text else first
        index = next(
            (
                i
                for i, r in enumerate(prompt.regions)
                if (not file or r.region.file == file) and r.first_line <= first <= last < r.first_line + len(texts[i])
            ),
            None,
        )
        if index is None:
            continue
        base = prompt.regions[index].first_line
        new_lines = _lines(_NUMBER_PREFIX.sub("", body)) if body.strip() else []
        replacements.append((index, first - base, last - base, new_lines))
    for index, start, end, new_lines in sorted(replacements, key=lambda r: (r[0], r[1]), reverse=True):
        texts[index][start : end + 1] = new_lines
    edits = []
    for region, lines in zip(prompt.regions, texts, strict=True):
        text = "\n".join(lines) + ("\n" if region.text.endswith("\n") else "")
        if text != region.text:
            r = region.region
            edits.append(Edit(r.file, r.byte_start, r.byte_end, text))
    return tuple(edits)


def _as_shown(regions: Sequence[PromptRegion]) -> list[str]:
    return [r.display for r in regions]


@dataclass(frozen=True)
class AnswerFormat:
    """How the model is asked to answer (the prompt's last line), how the regions are shown to it,
    and how its answer becomes edits."""

    name: str
    instruction: str
    parse: Callable[[str, FixPrompt], tuple[Edit, ...]]
    show: Callable[[Sequence[PromptRegion]], list[str]] = _as_shown


ANSWER_FORMATS = {
    f.name: f
    for f in (
        AnswerFormat("item", "Reply with the corrected code only.", parse_item_answer),
        AnswerFormat(
            "search-replace",
            "Reply only with SEARCH/REPLACE blocks that change the fewest lines, the SEARCH lines copied "
            "exactly from the code above:\n\n<<<<<<< SEARCH\n(the lines to change)\n=======\n"
            "(the corrected lines)\n>>>>>>> REPLACE",
            parse_search_replace_answer,
        ),
        AnswerFormat(
            "line-range",
            "Reply only with the lines to change, by their numbers above: for each range, a line\n"
            "REPLACE LINES a-b OF path\nthen a rust block with the corrected lines (without the numbers).",
            parse_line_range_answer,
            numbered_regions,
        ),
    )
}


class UnknownAnswerFormat(SleepyCoderError, ValueError):
    """A setting or strategy named an answer format that does not exist."""


def answer_format_named(name: str) -> AnswerFormat:
    try:
        return ANSWER_FORMATS[name]
    except KeyError:
        raise UnknownAnswerFormat(f"unknown answer format {name!r}; known: {', '.join(ANSWER_FORMATS)}") from None
