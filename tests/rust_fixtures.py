"""Small cargo crates written by tests: real sources compiled by the real toolchain."""

from __future__ import annotations

from pathlib import Path

MANIFEST = """[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
{deps}
"""


def make_crate(root: Path, files: dict[str, str], name: str = "fixture", deps: str = "") -> Path:
    """A crate at ``root`` with ``files`` (paths relative to the crate, e.g. ``src/main.rs``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text(MANIFEST.format(name=name, deps=deps))
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


MOVED_VALUE_BIN = """fn main() {
    let s = String::from("hello");
    let t = s;
    println!("{} {}", s, t);
}
"""

MISSING_DERIVE_LIB = """pub struct Point {
    pub x: i32,
    pub y: i32,
}

pub fn show(p: &Point) -> String {
    format!("{:?}", p)
}
"""

TWO_TYPE_ERRORS = """fn half(x: i32) -> i32 {
    x / 2
}

fn main() {
    let a: i32 = "one";
    let b = half(2.5);
    println!("{a} {b}");
}
"""

#: A type error whose fix uncovers two borrow-check errors (rustc reports those only once the
#: types check): fixing the crate takes two stages.
TYPE_THEN_BORROW_ERRORS = """fn half(x: i32) -> i32 {
    x / 2
}

fn main() {
    let n: u32 = 5;
    let h = half(n);
    let s = String::from("a");
    let t = s;
    let c = 0;
    c += 1;
    println!("{h} {s} {t} {c}");
}
"""
