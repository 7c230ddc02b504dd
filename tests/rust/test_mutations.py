"""Mutation operators on real tree-sitter parses, and their mutants compiled by the real rustc.

Pins down: each operator's breakage (what it removes, what it leaves alone), that every mutation is one
contiguous replacement, that :func:`mutations` yields operator by operator in source order and skips
mutants that no longer parse, that operator routes are real routes, and that rustc's first error for a
mutant of each operator is the error code (and route) the operator is meant to feed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from learner.fix.router import ROUTES, route_for_code
from learner.rust.check import check
from learner.rust.crate import locate_crate
from learner.rust.items import parse
from learner.rust.mutations import OPERATOR_BY_NAME, OPERATORS, Mutation, Operator, mutations


def _proposed(name: str, data: bytes) -> list[tuple[bytes, bytes]]:
    """``(original bytes, replacement)`` of every mutation operator ``name`` proposes for ``data``."""
    return [(data[m.start : m.end], m.replacement) for _, m in mutations(data, (OPERATOR_BY_NAME[name],))]


def test_apply_replaces_exactly_one_range_and_broken_end_marks_its_end_in_the_mutant() -> None:
    data = b"let mut x = 1;"
    mutation = Mutation("drop-mut", 4, 8, b"")
    assert mutation.apply(data) == b"let x = 1;"
    grow = Mutation("drop-ref", 8, 9, b"abc")
    mutant = grow.apply(data)
    assert mutant == b"let mut abc = 1;"
    assert mutant[grow.start : grow.broken_end] == b"abc"
    assert grow.broken_end == 11


def test_operator_names_are_unique_and_looked_up_by_name() -> None:
    names = [op.name for op in OPERATORS]
    assert len(names) == len(set(names)) == len(OPERATOR_BY_NAME)
    assert all(OPERATOR_BY_NAME[op.name] is op for op in OPERATORS)


def test_every_operator_feeds_only_routes_the_router_knows() -> None:
    for op in OPERATORS:
        assert op.routes, op.name
        assert set(op.routes) <= set(ROUTES), op.name


def test_drop_mut_removes_mut_from_bindings_and_references_but_not_from_self() -> None:
    data = b"impl S { fn bump(&mut self) {} }\nfn f(v: &mut Vec<i32>) { let mut n = 0; g(&mut n); }\n"
    assert _proposed("drop-mut", data) == [(b"mut ", b""), (b"mut ", b""), (b"mut ", b"")]
    starts = [m.start for _, m in mutations(data, (OPERATOR_BY_NAME["drop-mut"],))]
    assert starts == [data.index(b"mut Vec"), data.index(b"mut n"), data.index(b"mut n)")]


def test_mutants_that_no_longer_parse_are_skipped() -> None:
    # `*mut i32` without `mut` is `*i32`, a syntax error: proposed by the operator, never yielded.
    data = b"fn main() { let p: *mut i32 = std::ptr::null_mut(); let _ = p; }"
    [(_, raw)] = [(op, m) for op in (OPERATOR_BY_NAME["drop-mut"],) for m in op.propose(data, parse(data))]
    assert parse(raw.apply(data)).has_error
    assert list(mutations(data)) == []


def test_source_with_syntax_errors_gets_no_mutations() -> None:
    assert list(mutations(b"fn main( { let mut x = 1; x += 1; }")) == []


def test_drop_clone_replaces_the_call_by_its_receiver() -> None:
    data = b"fn f(a: &String) { let b = a.clone(); let c = a.clone_from(&b); }"
    assert _proposed("drop-clone", data) == [(b"a.clone()", b"a")]


def test_drop_conversion_removes_into_to_string_and_to_owned_without_arguments() -> None:
    data = b'fn f() { let a: String = "x".to_string(); let b: String = "y".to_owned(); let c: u64 = 1u32.into(); }'
    assert _proposed("drop-conversion", data) == [
        (b'"x".to_string()', b'"x"'),
        (b'"y".to_owned()', b'"y"'),
        (b"1u32.into()", b"1u32"),
    ]
    assert _proposed("drop-conversion", b"fn f() { let v: Vec<u8> = x.into_iter().collect(); }") == []


def test_drop_ref_removes_shared_borrows_in_arguments_and_lets_only() -> None:
    data = b"fn f(x: String) -> usize { g(&x); let r = &x; let m = &mut y; h(&mut z); return &x; }"
    assert _proposed("drop-ref", data) == [(b"&x", b"x"), (b"&x", b"x")]


def test_drop_derive_removes_one_trait_at_a_time_and_the_whole_attribute_for_the_last() -> None:
    data = b"#[derive(Debug, Clone)]\nstruct A;\n#[derive(Debug)]\nstruct B;\n"
    assert _proposed("drop-derive", data) == [
        (b"(Debug, Clone)", b"(Clone)"),
        (b"(Debug, Clone)", b"(Debug)"),
        (b"#[derive(Debug)]\n", b""),
    ]


def test_drop_derive_leaves_other_attributes_alone() -> None:
    assert _proposed("drop-derive", b"#[cfg_attr(test, derive(Debug))]\n#[allow(dead_code)]\nstruct A;\n") == []


def test_drop_derive_keeps_path_qualified_derives_whole() -> None:
    data = b"#[derive(Debug, serde::Serialize)]\nstruct A { x: i32 }\n"
    assert _proposed("drop-derive", data) == [
        (b"(Debug, serde::Serialize)", b"(serde::Serialize)"),
        (b"(Debug, serde::Serialize)", b"(Debug)"),
    ]


def test_drop_lifetime_removes_the_parameter_and_every_reference_use() -> None:
    data = b"fn longest<'a>(a: &'a str, b: &'a mut str) -> &'a str { a }\nstruct H<'a, T> { r: &'a T }\n"
    assert _proposed("drop-lifetime", data) == [
        (
            b"fn longest<'a>(a: &'a str, b: &'a mut str) -> &'a str { a }",
            b"fn longest(a: &str, b: &mut str) -> &str { a }",
        ),
        (b"struct H<'a, T> { r: &'a T }", b"struct H<T> { r: &T }"),
    ]


def test_drop_lifetime_skips_items_that_use_the_lifetime_other_than_in_a_reference() -> None:
    in_body = b"fn f<'a>(x: &'a str) -> &'a str { let y: &'a str = x; y }"
    as_bound = b"struct S<'a, T: 'a> { r: &'a T }"
    as_argument = b"fn g<'a>(x: Holder<'a>) -> &'a str { x.0 }"
    unused = b"fn h<'a>() {}"
    for data in (in_body, as_bound, as_argument, unused):
        assert _proposed("drop-lifetime", data) == [], data


def test_drop_bound_removes_one_bound_or_the_only_one_of_a_type_parameter() -> None:
    data = b"fn f<T: Clone + Debug, U: Copy>(t: T, u: U) {}"
    assert _proposed("drop-bound", data) == [
        (b": Clone + Debug", b": Debug"),
        (b": Clone + Debug", b": Clone"),
        (b": Copy", b""),
    ]


def test_drop_bound_in_a_where_clause_keeps_at_least_one_bound() -> None:
    assert _proposed("drop-bound", b"fn f<T>(t: T) where T: Clone {}") == []
    assert _proposed("drop-bound", b"fn f<T>(t: T) where T: Clone + Send {}") == [
        (b": Clone + Send", b": Send"),
        (b": Clone + Send", b": Clone"),
    ]
    assert _proposed("drop-bound", b"fn f<'a, T: 'a + Clone>(t: &'a T) {}") == [(b": 'a + Clone", b": 'a")]


def test_unit_return_drops_a_result_or_option_return_type_only_when_the_body_uses_try() -> None:
    uses_try = b"fn p(s: &str) -> Result<i32, E> { let n = s.parse()?; Ok(n) }"
    assert _proposed("unit-return", uses_try) == [(b" -> Result<i32, E>", b"")]
    assert _proposed("unit-return", b"fn q() -> io::Result<()> { g()?; Ok(()) }") == [(b" -> io::Result<()>", b"")]
    assert _proposed("unit-return", b"fn o() -> Option<i32> { None }") == []
    assert _proposed("unit-return", b"fn n() -> i32 { g()?; 1 }") == []


def test_misspell_drops_the_middle_letter_of_each_long_ascii_name_once() -> None:
    data = "fn main() { let total = 3; f(total); g(total); let x = total + abc; h(größe); }".encode()
    assert _proposed("misspell", data) == [(b"total", b"toal")]
    first = next(m for _, m in mutations(data, (OPERATOR_BY_NAME["misspell"],)))
    assert first.start == data.index(b"total)")


def test_human_shaped_operators_break_an_import_an_annotation_and_a_field() -> None:
    data = b"use std::fmt;\npub use std::io;\nstruct S<'a> { a: String, b: &'a str }\nstruct T { n: String }\n"
    data += b"fn f(v: &[u8]) { let n: usize = v.len(); let k: usize = 3; let s: String = g(); }\n"
    assert _proposed("drop-import", data) == [(b"use std::fmt;\n", b"")]  # a pub re-export is API, kept
    assert _proposed("wrong-annotation", data) == [(b"usize", b"u32"), (b"String", b"&str")]  # not on a literal
    assert _proposed("borrowed-field", data) == [(b"String", b"&str")]  # only where no lifetime is declared


def test_drop_field_removes_one_field_of_a_complete_struct_literal() -> None:
    data = b"fn f(b: i32) { let p = P { a: 1, b }; let q = P { a: 2, ..p }; let r = Q { only: 1 }; }"
    assert _proposed("drop-field", data) == [(b"a: 1, ", b""), (b", b", b"")]


def test_mutations_come_operator_by_operator_in_source_order() -> None:
    data = b"""#[derive(Debug, Clone)]
struct P { x: i32, y: i32 }
fn main() {
    let mut first = P { x: 1, y: 2 };
    let mut second = first.clone();
    first.x += second.y;
    second.y += 1;
    println!("{:?}", first);
}
"""
    found = list(mutations(data))
    order = [op.name for op, _ in found]
    assert order == sorted(order, key=[op.name for op in OPERATORS].index)
    for name in set(order):
        starts = [m.start for op, m in found if op.name == name]
        assert starts == sorted(starts), name
    assert {"drop-mut", "drop-clone", "drop-derive", "drop-field"} <= set(order)


def test_every_mutant_parses_and_differs_from_the_original() -> None:
    for program in _PROGRAMS.values():
        for _, mutation in mutations(program):
            mutant = mutation.apply(program)
            assert mutant != program
            assert not parse(mutant).has_error
            assert mutant[: mutation.start] == program[: mutation.start]
            assert mutant[mutation.broken_end :] == program[mutation.end :]


def test_a_custom_operator_tuple_limits_what_is_proposed() -> None:
    program = _PROGRAMS["drop-clone"]
    assert {op.name for op, _ in mutations(program)} == {"drop-clone", "misspell"}
    only = (OPERATOR_BY_NAME["misspell"],)
    found = list(mutations(program, only))
    assert found and all(op is only[0] for op, _ in found)
    assert list(mutations(program, ())) == []


# Programs that compile, one per operator, each giving that operator something to break.
_PROGRAMS: dict[str, bytes] = {
    "drop-mut": b'fn main() {\n    let mut total = 0;\n    total += 1;\n    println!("{}", total);\n}\n',
    "drop-clone": b'fn main() {\n    let name = String::from("a");\n    let copy = name.clone();\n'
    b'    println!("{} {}", copy, name);\n}\n',
    "drop-ref": b"fn takes(s: &String) -> usize {\n    s.len()\n}\n\nfn main() {\n"
    b'    let name = String::from("a");\n    let n = takes(&name);\n    println!("{} {}", n, name);\n}\n',
    "drop-derive": b"#[derive(Debug)]\nstruct Point {\n    x: i32,\n}\n\nfn main() {\n"
    b'    let p = Point { x: 1 };\n    println!("{:?}", p);\n}\n',
    "drop-lifetime": b"struct Holder<'a> {\n    name: &'a str,\n}\n\nfn main() {\n"
    b'    let h = Holder { name: "x" };\n    println!("{}", h.name);\n}\n',
    "drop-bound": b'fn show<T: std::fmt::Debug>(t: T) -> String {\n    format!("{:?}", t)\n}\n\n'
    b'fn main() {\n    println!("{}", show(5));\n}\n',
    "drop-conversion": b'fn main() {\n    let owned: String = "lit".to_string();\n    println!("{}", owned);\n}\n',
    "unit-return": b"fn parse(s: &str) -> Result<i32, std::num::ParseIntError> {\n"
    b'    let n = s.parse::<i32>()?;\n    Ok(n)\n}\n\nfn main() {\n    println!("{:?}", parse("3"));\n}\n',
    "misspell": b'fn main() {\n    let total = 3;\n    let doubled = total * 2;\n    println!("{}", doubled);\n}\n',
    "drop-field": b"struct Point {\n    x: i32,\n    y: i32,\n}\n\nfn main() {\n"
    b'    let p = Point { x: 1, y: 2 };\n    println!("{}", p.x + p.y);\n}\n',
    "drop-import": b"use std::collections::HashMap;\n\nfn main() {\n    let mut seen = HashMap::new();\n"
    b'    seen.insert(1, "one");\n    println!("{}", seen.len());\n}\n',
    "wrong-annotation": b"fn main() {\n    let items = vec![1, 2, 3];\n    let count: usize = items.len();\n"
    b'    println!("{}", count);\n}\n',
    "borrowed-field": b"struct User {\n    name: String,\n    age: u8,\n}\n\nfn main() {\n"
    b'    let u = User { name: String::from("a"), age: 3 };\n    println!("{} {}", u.name, u.age);\n}\n',
}

#: The code rustc reports first for the mutant, as each operator's docstring promises.
_EXPECTED_CODE = {
    "drop-mut": "E0384",
    "drop-clone": "E0382",
    "drop-ref": "E0308",
    "drop-derive": "E0277",
    "drop-lifetime": "E0106",
    "drop-bound": "E0277",
    "drop-conversion": "E0308",
    "unit-return": "E0277",
    "misspell": "E0425",
    "drop-field": "E0063",
    "drop-import": "E0433",
    "wrong-annotation": "E0308",
    "borrowed-field": "E0106",
}


def _first_error_code(tmp_path: Path, name: str, data: bytes) -> tuple[bool, str | None]:
    """Compile ``data`` as a lone binary with the real rustc: (compiled cleanly, first error code)."""
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "main.rs"
    path.write_bytes(data)
    result = check(locate_crate(path), folder / "target", timeout_s=60)
    errors = result.errors
    return result.success, errors[0].code if errors else None


def test_every_operator_has_a_compile_case() -> None:
    assert set(_PROGRAMS) == set(_EXPECTED_CODE) == set(OPERATOR_BY_NAME)


@pytest.mark.parametrize("name", sorted(_EXPECTED_CODE))
def test_rustc_reports_the_promised_error_code_for_the_operators_mutant(tmp_path: Path, name: str) -> None:
    operator: Operator = OPERATOR_BY_NAME[name]
    program = _PROGRAMS[name]
    assert _first_error_code(tmp_path, "original", program) == (True, None)
    found = [m for _, m in mutations(program, (operator,))]
    assert found
    for i, mutation in enumerate(found):
        ok, code = _first_error_code(tmp_path, f"mutant{i}", mutation.apply(program))
        assert not ok
        assert code == _EXPECTED_CODE[name], mutation
        assert route_for_code(code).name in operator.routes


def test_drop_mut_on_a_mutable_borrow_argument_is_outside_its_route(tmp_path: Path) -> None:
    """An operator only proposes: ``push(&mut v)`` -> ``push(&v)`` is a type error, not a mutability one,
    which is why the curriculum keeps a mutant only when rustc's error falls in the operator's routes."""
    program = b"fn push(v: &mut Vec<i32>) {\n    v.push(1);\n}\n\nfn main() {\n    let mut v = Vec::new();\n"
    program += b'    push(&mut v);\n    println!("{:?}", v);\n}\n'
    operator = OPERATOR_BY_NAME["drop-mut"]
    codes = [
        _first_error_code(tmp_path, f"m{i}", m.apply(program))[1]
        for i, (_, m) in enumerate(mutations(program, (operator,)))
    ]
    assert codes == ["E0596", "E0596", "E0308"]
    assert [route_for_code(c).name in operator.routes for c in codes] == [True, True, False]
