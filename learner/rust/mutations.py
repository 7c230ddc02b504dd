"""Mutation operators: small, realistic breakages of correct Rust code, found with tree-sitter.

The curriculum learns fixes by reversing these: the mutant is the broken program, the
original is its fix. Each operator undoes one thing a programmer typically forgets (a
``mut``, a ``.clone()``, a ``&``, a derive, a lifetime, a bound, a conversion, a field, a
spelling), so the errors rustc reports for mutants look like the errors users hit. An
operator only *proposes*: which error code a mutant really produces is decided by rustc
(:mod:`learner.learn.curriculum`), never assumed here. ``routes`` on each operator is the family
it is meant to feed and is what the curriculum accepts.

Every mutation is one contiguous byte replacement, so the broken and fixed files differ in a
single range and the prompt region containing it is the whole diff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tree_sitter import Node

from learner.rust.items import parse


@dataclass(frozen=True)
class Mutation:
    """Replace ``data[start:end]`` with ``replacement``; ``operator`` names the rule that proposed it."""

    operator: str
    start: int
    end: int
    replacement: bytes

    def apply(self, data: bytes) -> bytes:
        return data[: self.start] + self.replacement + data[self.end :]

    @property
    def broken_end(self) -> int:
        """End of the changed range in the mutant (its start is ``start``)."""
        return self.start + len(self.replacement)


@dataclass(frozen=True)
class Operator:
    name: str
    #: Routes a mutant of this operator is kept for (rustc's first error must fall in one).
    routes: tuple[str, ...]
    propose: Callable[[bytes, Node], Iterator[Mutation]]


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _same(a: Node | None, b: Node) -> bool:
    return a is not None and a.id == b.id


def _text(node: Node | None) -> bytes:
    return node.text if node is not None and node.text is not None else b""


def _delete(name: str, data: bytes, start: int, end: int) -> Mutation:
    """Delete ``[start, end)`` and the blanks that follow it on the same line."""
    while end < len(data) and data[end : end + 1] in (b" ", b"\t"):
        end += 1
    return Mutation(name, start, end, b"")


def _drop_mut(data: bytes, root: Node) -> Iterator[Mutation]:
    """``let mut x`` -> ``let x``; ``&mut x`` -> ``&x`` (E0384, E0596)."""
    for node in _walk(root):
        if node.type == "mutable_specifier" and node.parent is not None and node.parent.type != "self_parameter":
            yield _delete("drop-mut", data, node.start_byte, node.end_byte)


def _method_calls(root: Node, names: tuple[bytes, ...]) -> Iterator[tuple[Node, Node]]:
    """``(call, receiver)`` for every ``receiver.name()`` call without arguments."""
    for node in _walk(root):
        if node.type != "call_expression":
            continue
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if function is None or function.type != "field_expression" or arguments is None:
            continue
        if arguments.named_child_count != 0 or _text(function.child_by_field_name("field")) not in names:
            continue
        receiver = function.child_by_field_name("value")
        if receiver is not None:
            yield node, receiver


def _drop_method(name: str, methods: tuple[bytes, ...]) -> Callable[[bytes, Node], Iterator[Mutation]]:
    def propose(data: bytes, root: Node) -> Iterator[Mutation]:
        for call, receiver in _method_calls(root, methods):
            yield Mutation(name, call.start_byte, call.end_byte, _text(receiver))

    return propose


def _drop_ref(data: bytes, root: Node) -> Iterator[Mutation]:
    """``f(&x)`` / ``let y = &x`` -> without the ``&`` (E0308, E0382)."""
    for node in _walk(root):
        if node.type != "reference_expression" or node.parent is None:
            continue
        if node.parent.type not in ("arguments", "let_declaration"):
            continue
        if any(child.type == "mutable_specifier" for child in node.children):
            continue
        value = node.child_by_field_name("value")
        if value is not None:
            yield Mutation("drop-ref", node.start_byte, node.end_byte, _text(value))


def _drop_derive(data: bytes, root: Node) -> Iterator[Mutation]:
    """Remove one trait from a ``#[derive(...)]`` (E0277, E0599, E0369)."""
    for node in _walk(root):
        if node.type != "attribute" or _text(node.child(0)) != b"derive":
            continue
        tree = node.child_by_field_name("arguments") or next((c for c in node.children if c.type == "token_tree"), None)
        if tree is None:
            continue
        # Entries are split at commas, so a path such as ``serde::Serialize`` stays one entry.
        groups: list[list[Node]] = [[]]
        for child in tree.children:
            if child.type in ("(", ")"):
                continue
            if child.type == ",":
                groups.append([])
            else:
                groups[-1].append(child)
        kept_all = [data[g[0].start_byte : g[-1].end_byte].decode() for g in groups if g]
        for i in range(len(kept_all)):
            kept = kept_all[:i] + kept_all[i + 1 :]
            if not kept:
                attribute_item = node.parent
                if attribute_item is not None and attribute_item.type == "attribute_item":
                    end = attribute_item.end_byte
                    end = end + 1 if data[end : end + 1] == b"\n" else end
                    yield Mutation("drop-derive", attribute_item.start_byte, end, b"")
                continue
            yield Mutation("drop-derive", tree.start_byte, tree.end_byte, ("(" + ", ".join(kept) + ")").encode())


def _drop_lifetime(data: bytes, root: Node) -> Iterator[Mutation]:
    """Remove a lifetime parameter and its uses in reference types of one item (E0106, E0261).

    Only items where every use of the lifetime is a generic parameter or a ``&'a T`` are
    mutated, so the result is exactly "the lifetimes were forgotten".
    """
    for item in _walk(root):
        if item.type not in ("function_item", "struct_item", "enum_item"):
            continue
        params = item.child_by_field_name("type_parameters")
        if params is None:
            continue
        for param in params.named_children:
            if param.type != "lifetime_parameter":
                continue
            name = _text(param.named_child(0) if param.named_child_count else param)
            if not name or name == b"'static":
                continue
            cuts: list[tuple[int, int]] = [_list_entry(data, param, params)]
            ok = True
            body = item.child_by_field_name("body")
            for node in _walk(item):
                if node.type != "lifetime" or _text(node) != name or _same(node.parent, param):
                    continue
                if (
                    body is not None
                    and body.start_byte <= node.start_byte < body.end_byte
                    and item.type == "function_item"
                ):
                    ok = False
                    break
                if node.parent is None or node.parent.type != "reference_type":
                    ok = False
                    break
                end = node.end_byte
                while data[end : end + 1] == b" ":
                    end += 1
                cuts.append((node.start_byte, end))
            if not ok or len(cuts) < 2:
                continue
            start, stop = item.start_byte, item.end_byte
            out = bytearray(data[start:stop])
            for a, b in sorted(cuts, reverse=True):
                del out[a - start : b - start]
            yield Mutation("drop-lifetime", start, stop, bytes(out))


def _list_entry(data: bytes, entry: Node, container: Node) -> tuple[int, int]:
    """Byte range that removes ``entry`` from a ``<...>`` or ``{...}`` list, with its comma."""
    named = [c for c in container.named_children if not c.type.endswith("comment")]
    if len(named) == 1:
        return container.start_byte, container.end_byte
    index = next(i for i, c in enumerate(named) if c.id == entry.id)
    if index + 1 < len(named):
        return entry.start_byte, named[index + 1].start_byte
    return named[index - 1].end_byte, entry.end_byte


def _drop_bound(data: bytes, root: Node) -> Iterator[Mutation]:
    """``T: A + B`` -> ``T: B`` / ``T`` (E0277, E0369, E0599)."""
    for node in _walk(root):
        if (
            node.type != "trait_bounds"
            or node.parent is None
            or node.parent.type
            not in (
                "type_parameter",
                "where_predicate",
            )
        ):
            continue
        bounds = [c for c in node.named_children if c.type != "lifetime"]
        if len(bounds) == 1 and len(node.named_children) == 1:
            if node.parent.type == "type_parameter":
                yield Mutation("drop-bound", node.start_byte, node.end_byte, b"")
            continue
        for bound in bounds:
            kept = [_text(c).decode() for c in node.named_children if c.id != bound.id]
            yield Mutation("drop-bound", node.start_byte, node.end_byte, (": " + " + ".join(kept)).encode())


def _unit_return(data: bytes, root: Node) -> Iterator[Mutation]:
    """A function using ``?`` that returns ``Result``/``Option`` -> no return type (E0277)."""
    for node in _walk(root):
        if node.type != "function_item":
            continue
        ret = node.child_by_field_name("return_type")
        body = node.child_by_field_name("body")
        if ret is None or body is None or not _text(ret).startswith((b"Result", b"Option", b"io::Result")):
            continue
        if not any(n.type == "try_expression" for n in _walk(body)):
            continue
        arrow = ret.prev_sibling
        if arrow is None or arrow.type != "->":
            continue
        start = arrow.start_byte
        while start > 0 and data[start - 1 : start] == b" ":
            start -= 1
        yield Mutation("unit-return", start, ret.end_byte, b"")


def _misspell(data: bytes, root: Node) -> Iterator[Mutation]:
    """A local name used in an expression, one letter dropped (E0425)."""
    seen: set[bytes] = set()
    for node in _walk(root):
        if node.type != "identifier" or node.parent is None:
            continue
        parent = node.parent
        is_value = parent.type == "let_declaration" and _same(parent.child_by_field_name("value"), node)
        if not is_value and parent.type not in (
            "arguments",
            "binary_expression",
            "return_expression",
            "field_expression",
        ):
            continue
        name = _text(node)
        if len(name) < 4 or name in seen or not name.isascii():
            continue
        seen.add(name)
        middle = len(name) // 2
        yield Mutation("misspell", node.start_byte, node.end_byte, name[:middle] + name[middle + 1 :])


def _drop_field(data: bytes, root: Node) -> Iterator[Mutation]:
    """Remove one field from a struct literal that gives every field (E0063)."""
    for node in _walk(root):
        if node.type != "field_initializer_list":
            continue
        fields = [c for c in node.named_children if c.type in ("field_initializer", "shorthand_field_initializer")]
        if len(fields) < 2 or any(c.type == "base_field_initializer" for c in node.named_children):
            continue
        for field in fields:
            start, end = _list_entry(data, field, node)
            yield Mutation("drop-field", start, end, b"")


def _drop_import(data: bytes, root: Node) -> Iterator[Mutation]:
    """Delete a (non-``pub``) ``use`` declaration: the import a programmer forgot (E0433, E0412, E0425)."""
    for node in _walk(root):
        if node.type != "use_declaration" or any(c.type == "visibility_modifier" for c in node.children):
            continue
        end = node.end_byte + (1 if data[node.end_byte : node.end_byte + 1] == b"\n" else 0)
        yield Mutation("drop-import", node.start_byte, end, b"")


#: An annotation changed to a type a programmer easily confuses it with.
_CONFUSED_TYPES = {
    b"usize": b"u32",
    b"u32": b"usize",
    b"u64": b"u32",
    b"i64": b"i32",
    b"i32": b"i64",
    b"u8": b"char",
    b"f64": b"f32",
    b"String": b"&str",
}


def _wrong_annotation(data: bytes, root: Node) -> Iterator[Mutation]:
    """``let n: usize = v.len()`` -> ``let n: u32 = ...``: a wrong type annotation (E0308)."""
    for node in _walk(root):
        if node.type != "let_declaration":
            continue
        annotation, value = node.child_by_field_name("type"), node.child_by_field_name("value")
        if annotation is None or value is None or value.type in ("integer_literal", "float_literal"):
            continue  # a literal takes whatever type it is annotated with
        confused = _CONFUSED_TYPES.get(_text(annotation))
        if confused is not None:
            yield Mutation("wrong-annotation", annotation.start_byte, annotation.end_byte, confused)


def _borrowed_field(data: bytes, root: Node) -> Iterator[Mutation]:
    """A ``String`` field of a struct without lifetimes declared ``&str``: a reference field without a
    lifetime (E0106)."""
    for node in _walk(root):
        if node.type != "struct_item" or node.child_by_field_name("type_parameters") is not None:
            continue
        body = node.child_by_field_name("body")
        for field in body.named_children if body is not None else ():
            kind = field.child_by_field_name("type") if field.type == "field_declaration" else None
            if kind is not None and _text(kind) == b"String":
                yield Mutation("borrowed-field", kind.start_byte, kind.end_byte, b"&str")


OPERATORS: tuple[Operator, ...] = (
    Operator("drop-mut", ("mutability",), _drop_mut),
    Operator("drop-clone", ("moved-value", "borrow-conflict"), _drop_method("drop-clone", (b"clone",))),
    Operator("drop-ref", ("mismatched-types", "moved-value"), _drop_ref),
    Operator("drop-derive", ("trait-bound", "method-not-found"), _drop_derive),
    Operator("drop-lifetime", ("missing-lifetime",), _drop_lifetime),
    Operator("drop-bound", ("trait-bound", "method-not-found"), _drop_bound),
    Operator(
        "drop-conversion",
        ("mismatched-types",),
        _drop_method("drop-conversion", (b"into", b"to_string", b"to_owned")),
    ),
    Operator("unit-return", ("trait-bound",), _unit_return),
    Operator("misspell", ("unresolved-name",), _misspell),
    Operator("drop-field", ("struct-fields",), _drop_field),
    # Human-shaped mistakes: a forgotten import, a wrong annotation, a borrowed field without a lifetime.
    Operator("drop-import", ("unresolved-name",), _drop_import),
    Operator("wrong-annotation", ("mismatched-types",), _wrong_annotation),
    Operator("borrowed-field", ("missing-lifetime",), _borrowed_field),
)
OPERATOR_BY_NAME = {op.name: op for op in OPERATORS}


def mutations(data: bytes, operators: tuple[Operator, ...] = OPERATORS) -> Iterator[tuple[Operator, Mutation]]:
    """Every mutation the operators propose for ``data``, operator by operator, in source order.

    Mutants that tree-sitter cannot parse are skipped: a syntax error is not what we teach.
    """
    root = parse(data)
    if root.has_error:
        return
    for operator in operators:
        for mutation in operator.propose(data, root):
            if mutation.replacement == data[mutation.start : mutation.end]:
                continue
            if parse(mutation.apply(data)).has_error:
                continue
            yield operator, mutation
