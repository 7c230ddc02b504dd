"""Rust items found with tree-sitter: the regions a prompt shows and the facts the guard compares.

The model is shown (and may rewrite) whole items, not whole files: the function around an
error, and the definitions that the diagnostic points at (a struct that needs a derive, a
trait, a called function). The degenerate-fix guard compares item inventories, function
bodies and risky markers before and after a candidate.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

import tree_sitter_rust
from tree_sitter import Language, Node, Parser

ITEM_KINDS = frozenset(
    {
        "function_item",
        "function_signature_item",
        "struct_item",
        "enum_item",
        "union_item",
        "trait_item",
        "impl_item",
        "mod_item",
        "const_item",
        "static_item",
        "type_item",
        "macro_definition",
    }
)
_CONTAINERS = frozenset({"impl_item", "trait_item", "mod_item", "source_file"})
#: Items above this many lines are shown as a window around the error instead.
MAX_REGION_LINES = 160
_WINDOW_LINES = 40


@functools.lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_rust.language()))


def parse(data: bytes) -> Node:
    return _parser().parse(data).root_node


@dataclass(frozen=True)
class Region:
    """A byte range of a file shown to the model, with a label such as ``fn main``."""

    file: str
    byte_start: int
    byte_end: int
    label: str

    def text(self, data: bytes) -> str:
        return data[self.byte_start : self.byte_end].decode("utf-8")

    def overlaps(self, other: Region) -> bool:
        return self.file == other.file and self.byte_start < other.byte_end and other.byte_start < self.byte_end


def _name(node: Node) -> str:
    name = node.child_by_field_name("name")
    if name is not None and name.text is not None:
        return name.text.decode("utf-8", "replace")
    if node.type == "impl_item":
        trait = node.child_by_field_name("trait")
        ty = node.child_by_field_name("type")
        parts = [p.text.decode("utf-8", "replace") for p in (trait, ty) if p is not None and p.text]
        return " for ".join(parts)
    return ""


def _label(node: Node) -> str:
    kind = node.type.removesuffix("_item").removesuffix("_definition").replace("function", "fn")
    kind = {"fn_signature": "fn", "macro": "macro_rules!"}.get(kind, kind)
    return f"{kind} {_name(node)}".strip()


def _with_attributes(node: Node) -> int:
    """Start byte of ``node`` including the attributes and doc comments directly above it."""
    start = node.start_byte
    prev = node.prev_sibling
    while prev is not None and prev.type in ("attribute_item", "line_comment", "block_comment"):
        if prev.type != "attribute_item" and not (prev.text or b"").startswith((b"///", b"/**")):
            break
        start = prev.start_byte
        prev = prev.prev_sibling
    return start


def _line_start(data: bytes, offset: int) -> int:
    return data.rfind(b"\n", 0, offset) + 1


def _line_end(data: bytes, offset: int) -> int:
    end = data.find(b"\n", offset)
    return len(data) if end < 0 else end + 1


def item_node_at(root: Node, byte_start: int, byte_end: int | None = None) -> Node | None:
    """The item a change at these bytes belongs to.

    Inside a function that is the outermost function of its impl/trait/module (a closure or
    nested fn is shown with its parent); elsewhere the innermost item (a struct, an impl
    header, a trait).
    """
    end = byte_start if byte_end is None else byte_end
    node: Node | None = root.descendant_for_byte_range(byte_start, max(byte_start, end))
    innermost: Node | None = None
    outer_fn: Node | None = None
    while node is not None:
        if node.type in ITEM_KINDS and innermost is None and node.type != "mod_item":
            innermost = node
        if node.type == "function_item":
            outer_fn = node
        if node.type in _CONTAINERS and outer_fn is not None:
            break
        node = node.parent
    return outer_fn or innermost


def region_at(file: str, data: bytes, byte_start: int, byte_end: int | None = None) -> Region:
    """The region to show for an error at these bytes: its item, or a window of whole lines."""
    root = parse(data)
    node = item_node_at(root, byte_start, byte_end)
    end = byte_start if byte_end is None else byte_end
    if node is not None:
        start = _line_start(data, _with_attributes(node))
        stop = _line_end(data, max(node.end_byte - 1, start))
        if data.count(b"\n", start, stop) <= MAX_REGION_LINES:
            return Region(file, start, stop, _label(node))
    # No item (top-level statement or macro soup) or a huge item: a window of whole lines.
    start = _line_start(data, byte_start)
    for _ in range(_WINDOW_LINES):
        if start == 0:
            break
        start = _line_start(data, start - 1)
    stop = _line_end(data, end)
    for _ in range(_WINDOW_LINES):
        if stop >= len(data):
            break
        stop = _line_end(data, stop)
    first_line = data.count(b"\n", 0, start) + 1
    # A window that ends at the end of a file without a final newline still covers its last line.
    last_line = data.count(b"\n", 0, stop) + (0 if stop == 0 or data[stop - 1 : stop] == b"\n" else 1)
    return Region(file, start, stop, f"lines {first_line}-{last_line}")


def item_inventory(data: bytes) -> Counter[str]:
    """Every item (nested ones too) as ``kind path::name``: a lost item shows up as a missing key."""
    inventory: Counter[str] = Counter()

    def walk(node: Node, prefix: str) -> None:
        for child in node.named_children:
            if child.type in ITEM_KINDS:
                label = _label(child)
                inventory[f"{prefix}{label}"] += 1
                body = child.child_by_field_name("body")
                if body is not None and child.type in ("impl_item", "trait_item", "mod_item"):
                    walk(body, f"{prefix}{label}::")
            elif child.type in ("declaration_list", "source_file"):
                walk(child, prefix)

    walk(parse(data), "")
    return inventory


def function_statement_counts(data: bytes) -> dict[str, int]:
    """Statements (and a tail expression) in each function body, keyed like :func:`item_inventory`."""
    counts: dict[str, int] = {}

    def walk(node: Node, prefix: str) -> None:
        for child in node.named_children:
            if child.type == "function_item":
                body = child.child_by_field_name("body")
                if body is not None:
                    n = sum(1 for c in body.named_children if not c.type.endswith("comment"))
                    counts[f"{prefix}{_label(child)}"] = n
            elif child.type in ("impl_item", "trait_item", "mod_item"):
                body = child.child_by_field_name("body")
                if body is not None:
                    walk(body, f"{prefix}{_label(child)}::")

    walk(parse(data), "")
    return counts


_MARKERS = {
    "todo!()": re.compile(rb"\btodo!\s*[\(\[\{]"),
    "unimplemented!()": re.compile(rb"\bunimplemented!\s*[\(\[\{]"),
    "#[allow(...)]": re.compile(rb"#!?\[\s*allow\s*\("),
    "unsafe": re.compile(rb"\bunsafe\b"),
}


def risky_markers(data: bytes) -> Counter[str]:
    """How often each marker of a give-up fix occurs in code (comments and strings excluded)."""
    code = _code_only(data)
    return Counter({name: len(pattern.findall(code)) for name, pattern in _MARKERS.items()})


def _code_only(data: bytes) -> bytes:
    """``data`` with comments and string literals blanked, offsets preserved."""
    out = bytearray(data)
    stack = [parse(data)]
    while stack:
        node = stack.pop()
        if node.type in (
            "line_comment",
            "block_comment",
            "string_literal",
            "raw_string_literal",
            "char_literal",
        ):
            out[node.start_byte : node.end_byte] = b" " * (node.end_byte - node.start_byte)
            continue
        stack.extend(node.children)
    return bytes(out)


def statement_at(data: bytes, byte_start: int, byte_end: int) -> str | None:
    """Whitespace-collapsed text of the statement holding these bytes (for the deletion check)."""
    node: Node | None = parse(data).descendant_for_byte_range(byte_start, max(byte_start, byte_end))
    while node is not None and node.parent is not None and node.parent.type != "block":
        node = node.parent
    if node is None or node.parent is None or node.text is None:
        return None
    return collapse_ws(node.text.decode("utf-8", "replace"))


def collapse_ws(text: str) -> str:
    return re.sub(r"\s+", "", text)


def has_syntax_errors(data: bytes) -> bool:
    return parse(data).has_error
