"""Rust items found with real tree-sitter parsing: which region a prompt shows for an error (its item with
attributes and doc comments, or a window of whole lines), how items are labelled, and the facts the
degenerate-fix guard compares (item inventory, statements per function, risky markers, the statement at
an error, whitespace-free text, syntax errors)."""

from __future__ import annotations

import pytest

from learner.rust.items import (
    ITEM_KINDS,
    MAX_REGION_LINES,
    Region,
    collapse_ws,
    function_statement_counts,
    has_syntax_errors,
    item_inventory,
    item_node_at,
    parse,
    region_at,
    risky_markers,
    statement_at,
)

PROGRAM = b"""use std::fmt;

/// A point on the plane.
#[derive(Debug, Clone)]
pub struct Point {
    x: i32,
}

// a plain comment, not documentation
impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let bump = |a: i32| a + 1;
        write!(f, "{}", bump(self.x))
    }
}

trait Shape {
    fn area(&self) -> f64;
    fn name(&self) -> String {
        String::from("shape")
    }
}

mod inner {
    pub fn helper() -> i32 {
        fn nested() -> i32 {
            41
        }
        nested() + 1
    }
    pub const LIMIT: u8 = 3;
}

macro_rules! noop {
    () => {};
}
type Alias = i32;
static COUNT: i32 = 1;
enum Colour {
    Red,
}
union Bits {
    a: u32,
}

fn main() {
    let p = Point { x: 1 };
    println!("{}", p);
}
"""


def _region(needle: bytes, data: bytes = PROGRAM, *, whole: bool = True) -> Region:
    start = data.index(needle)
    return region_at("src/main.rs", data, start, start + len(needle) if whole else None)


def _window_program(lines: int) -> bytes:
    """``lines`` top-level ``use`` lines: no item, so every region in it is a window."""
    return b"".join(b"use crate_%d;\n" % i for i in range(1, lines + 1))


def test_parse_returns_the_source_file_with_its_items() -> None:
    root = parse(b"fn a() {}\nstruct B;\n")
    assert root.type == "source_file"
    assert [c.type for c in root.named_children] == ["function_item", "struct_item"]
    assert not root.has_error


def test_region_at_returns_the_enclosing_function() -> None:
    region = _region(b"Point { x: 1 }")
    assert region.label == "fn main"
    assert region.file == "src/main.rs"
    assert region.text(PROGRAM) == 'fn main() {\n    let p = Point { x: 1 };\n    println!("{}", p);\n}\n'


def test_region_includes_doc_comments_and_attributes_above_the_item() -> None:
    region = _region(b"x: i32")
    assert region.label == "struct Point"
    assert region.text(PROGRAM).startswith("/// A point on the plane.\n#[derive(Debug, Clone)]\npub struct Point {")
    assert region.text(PROGRAM).endswith("}\n")


def test_plain_comment_above_an_item_is_not_part_of_its_region() -> None:
    region = _region(b"impl fmt::Display")
    assert region.label == "impl fmt::Display for Point"
    assert region.text(PROGRAM).startswith("impl fmt::Display for Point {")
    assert "plain comment" not in region.text(PROGRAM)


def test_error_in_a_method_shows_the_method_not_the_whole_impl() -> None:
    region = _region(b"write!")
    assert region.label == "fn fmt"
    text = region.text(PROGRAM)
    assert text.startswith("    fn fmt(&self")
    assert "impl" not in text


def test_error_in_a_closure_is_shown_with_the_function_around_it() -> None:
    assert _region(b"a + 1").label == "fn fmt"


def test_error_in_a_nested_fn_is_shown_with_the_outermost_function_of_its_module() -> None:
    region = _region(b"41")
    assert region.label == "fn helper"
    assert "nested() + 1" in region.text(PROGRAM)


def test_trait_methods_with_and_without_a_body_are_their_own_regions() -> None:
    assert _region(b'String::from("shape")').label == "fn name"
    signature = _region(b"-> f64")
    assert signature.label == "fn area"
    assert signature.text(PROGRAM) == "    fn area(&self) -> f64;\n"


@pytest.mark.parametrize(
    ("needle", "label"),
    [
        (b"LIMIT: u8", "const LIMIT"),
        (b"() => {};", "macro_rules! noop"),
        (b"Alias = i32", "type Alias"),
        (b"COUNT: i32", "static COUNT"),
        (b"Red,", "enum Colour"),
        (b"a: u32", "union Bits"),
    ],
)
def test_each_item_kind_gets_a_label_with_its_name(needle: bytes, label: str) -> None:
    assert _region(needle).label == label


def test_item_node_at_finds_no_item_for_a_use_declaration() -> None:
    root = parse(PROGRAM)
    assert item_node_at(root, PROGRAM.index(b"use std")) is None
    node = item_node_at(root, PROGRAM.index(b"Point { x: 1 }"))
    assert node is not None and node.type == "function_item" and node.type in ITEM_KINDS


def test_error_outside_any_item_gets_a_window_of_whole_lines() -> None:
    data = b"use a;\nuse b;\nuse c;\n"
    region = region_at("lib.rs", data, data.index(b"b;"))
    assert region.label == "lines 1-3"
    assert region.text(data) == data.decode()


def test_window_reaches_forty_lines_either_side_of_the_error() -> None:
    data = _window_program(200)
    start = data.index(b"use crate_100;")
    region = region_at("lib.rs", data, start, start + 3)
    assert region.label == "lines 60-140"
    text = region.text(data)
    assert text.startswith("use crate_60;\n") and text.endswith("use crate_140;\n")
    assert text.count("\n") == 81


def test_window_is_clamped_at_the_start_and_end_of_the_file() -> None:
    data = _window_program(30)
    region = region_at("lib.rs", data, data.index(b"use crate_5;"))
    assert (region.byte_start, region.byte_end) == (0, len(data))
    assert region.label == "lines 1-30"


def _long_function(body_lines: int) -> bytes:
    body = b"".join(b"    let v%d = %d;\n" % (i, i) for i in range(body_lines))
    return b"fn big() {\n" + body + b"}\n"


def test_item_of_max_region_lines_is_shown_whole() -> None:
    data = _long_function(MAX_REGION_LINES - 2)
    assert data.count(b"\n") == MAX_REGION_LINES
    region = region_at("m.rs", data, data.index(b"v100"))
    assert region.label == "fn big"
    assert (region.byte_start, region.byte_end) == (0, len(data))


def test_item_longer_than_max_region_lines_is_shown_as_a_window_around_the_error() -> None:
    data = _long_function(MAX_REGION_LINES - 1)
    region = region_at("m.rs", data, data.index(b"v100 "))
    # "let v100" is on line 102 of the file: 40 lines above and below it.
    assert region.label == "lines 62-142"
    assert region.text(data).startswith("    let v60 = 60;\n")


def test_region_text_decodes_utf8_at_byte_offsets() -> None:
    data = 'fn greet() {\n    let s = "héllo 🦀";\n}\n'.encode()
    region = region_at("g.rs", data, data.index("🦀".encode()))
    assert region.label == "fn greet"
    assert region.text(data) == data.decode()


def test_regions_overlap_only_in_the_same_file_and_when_their_bytes_intersect() -> None:
    a = Region("a.rs", 0, 10, "fn a")
    assert a.overlaps(Region("a.rs", 9, 20, "fn b"))
    assert a.overlaps(Region("a.rs", 2, 3, "inner"))
    assert not a.overlaps(Region("a.rs", 10, 20, "touching"))
    assert not a.overlaps(Region("b.rs", 0, 10, "other file"))


def test_item_inventory_lists_every_item_with_its_container_path() -> None:
    inventory = item_inventory(PROGRAM)
    assert inventory == {
        "struct Point": 1,
        "impl fmt::Display for Point": 1,
        "impl fmt::Display for Point::fn fmt": 1,
        "trait Shape": 1,
        "trait Shape::fn area": 1,
        "trait Shape::fn name": 1,
        "mod inner": 1,
        "mod inner::fn helper": 1,
        "mod inner::const LIMIT": 1,
        "macro_rules! noop": 1,
        "type Alias": 1,
        "static COUNT": 1,
        "enum Colour": 1,
        "union Bits": 1,
        "fn main": 1,
    }


def test_item_inventory_counts_repeated_items_and_shows_a_lost_one_as_missing() -> None:
    before = b"struct A;\nimpl A { fn new() -> A { A } }\nimpl A { fn new() -> A { A } fn other(&self) {} }\n"
    after = b"struct A;\nimpl A { fn new() -> A { A } }\nimpl A { fn new() -> A { A } }\n"
    assert item_inventory(before)["impl A::fn new"] == 2
    lost = item_inventory(before) - item_inventory(after)
    assert lost == {"impl A::fn other": 1}


def test_function_statement_counts_count_statements_and_tail_but_not_comments() -> None:
    data = b"""fn one() {
    let a = 1; // trailing
    // only a comment
    let b = a + 1;
    b
}
impl S { fn empty(&self) {} }
trait T { fn decl(&self); fn default(&self) { let _ = 1; } }
"""
    assert function_statement_counts(data) == {"fn one": 3, "impl S::fn empty": 0, "trait T::fn default": 1}


def test_risky_markers_count_code_and_ignore_comments_and_strings() -> None:
    data = b"""// todo!() unsafe #[allow(x)]
/* unimplemented!() */
#![allow(unused)]
#[allow(dead_code)]
fn f() {
    let s = "todo!() unsafe";
    let r = r#"unimplemented!()"#;
    println!("todo!()");
    unsafe { todo!() }
    todo![];
    unimplemented! {}
    let unsafe_name = 1;
}
"""
    assert risky_markers(data) == {"todo!()": 2, "unimplemented!()": 1, "#[allow(...)]": 2, "unsafe": 1}


def test_risky_markers_report_every_marker_even_when_absent() -> None:
    markers = risky_markers(b"fn f() {}\n")
    assert set(markers) == {"todo!()", "unimplemented!()", "#[allow(...)]", "unsafe"}
    assert sum(markers.values()) == 0


def test_statement_at_returns_the_whitespace_collapsed_statement_around_the_bytes() -> None:
    data = b"fn f() {\n    let  x = g( 1 );\n    if x > 0 {\n        h( x );\n    }\n    x\n}\n"
    at = data.index(b"g(")
    assert statement_at(data, at, at + 1) == "letx=g(1);"
    inner = data.index(b"h(")
    assert statement_at(data, inner, inner + 1) == "h(x);", "the innermost block's statement"
    tail = data.rindex(b"x")
    assert statement_at(data, tail, tail + 1) == "x"


def test_statement_at_is_none_outside_any_block() -> None:
    data = b"fn f(a: i32) -> i32 {\n    a\n}\n"
    assert statement_at(data, data.index(b"a: i32"), data.index(b"a: i32") + 1) is None
    assert statement_at(b"struct S;\n", 0, 1) is None


def test_collapse_ws_removes_every_kind_of_whitespace() -> None:
    assert collapse_ws("let  x =\n\t y ;\r\n") == "letx=y;"
    assert collapse_ws("") == ""


def test_has_syntax_errors_tells_broken_from_valid_code() -> None:
    assert has_syntax_errors(b"fn f( {")
    assert has_syntax_errors(b"fn main() { let x = ; }")
    assert not has_syntax_errors(PROGRAM)
    assert not has_syntax_errors(b"")


def test_window_label_counts_the_last_line_of_a_file_without_a_final_newline() -> None:
    data = b"use a;\nuse b;"
    region = region_at("lib.rs", data, data.index(b"b;"))
    assert region.text(data) == "use a;\nuse b;"
    assert region.label == "lines 1-2"
