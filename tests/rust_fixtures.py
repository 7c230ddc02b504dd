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


#: ``.cargo-checksum.json`` of a crate in a directory source: no file checksums, as Debian ships them.
REGISTRY_CHECKSUM = '{"package":"0000000000000000000000000000000000000000000000000000000000000000","files":{}}'

#: A published manifest (as ``cargo publish`` normalises it) naming an optional and a dev dependency
#: that the registry lacks, as Debian's crates do.
TINYLIB_MANIFEST = """[package]
edition = "2021"
name = "tinylib"
version = "0.2.0"

[dependencies.tinydep]
version = "0.1"

[dependencies.absent]
version = "1.0"
optional = true

[dev-dependencies.missing-dev]
version = "2"

[features]
default = ["std"]
std = []
extra = ["absent", "std"]
"""

TINYLIB_LIB = """pub mod count;

pub fn doubled(values: &[u32]) -> Vec<u32> {
    values.iter().map(|v| tinydep::twice(*v)).collect()
}
"""

TINYLIB_COUNT = """pub fn total(values: &[u32]) -> u32 {
    let mut sum = 0;
    for v in values {
        sum += v;
    }
    sum
}
"""


def make_registry(root: Path) -> Path:
    """A directory registry like Debian's: ``tinydep-0.1.0`` and ``tinylib-0.2.0`` (which uses it)."""
    crates = {
        "tinydep-0.1.0": {
            "Cargo.toml": '[package]\nedition = "2021"\nname = "tinydep"\nversion = "0.1.0"\n',
            "src/lib.rs": "pub fn twice(v: u32) -> u32 {\n    v * 2\n}\n",
        },
        "tinylib-0.2.0": {"Cargo.toml": TINYLIB_MANIFEST, "src/lib.rs": TINYLIB_LIB, "src/count.rs": TINYLIB_COUNT},
    }
    for name, files in crates.items():
        for rel, text in {**files, ".cargo-checksum.json": REGISTRY_CHECKSUM}.items():
            path = root / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return root


#: A crate of many small items for the simulated user (one error site per item): loops that need
#: ``mut`` (rustc's own suggestion fixes those), annotated lets and moved values (where it may not).
HABITS_LIB = """pub mod counters;

pub struct Tally {
    pub label: String,
    pub count: u32,
}

pub fn tally(values: &[u32]) -> u32 {
    let mut sum = 0;
    for v in values {
        sum += v;
    }
    sum
}

pub fn longest(words: &[String]) -> usize {
    let mut best = 0;
    for w in words {
        if w.len() > best {
            best = w.len();
        }
    }
    best
}

pub fn describe(t: &Tally) -> String {
    let label: String = t.label.clone();
    format!("{label}: {}", t.count)
}

pub fn renamed(t: Tally) -> (String, u32) {
    let label = t.label.clone();
    let kept = t;
    (label, kept.count)
}
"""


def _scaled(i: int) -> str:
    return f"""
pub fn scaled_{i}(values: &[u32]) -> Vec<u32> {{
    let mut out = Vec::new();
    for v in values {{
        out.push(v * {i + 2});
    }}
    out
}}
"""


HABITS_COUNTERS = """pub fn countdown(start: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut n = start;
    while n > 0 {
        out.push(n);
        n -= 1;
    }
    out
}

pub fn product(values: &[u64]) -> u64 {
    let mut acc = 1;
    for v in values {
        acc *= v;
    }
    acc
}
""" + "".join(_scaled(i) for i in range(16))


def make_habits_registry(root: Path) -> Path:
    """A directory registry holding ``habits-0.1.0`` (see :data:`HABITS_LIB`)."""
    files = {
        "Cargo.toml": '[package]\nedition = "2021"\nname = "habits"\nversion = "0.1.0"\n',
        "src/lib.rs": HABITS_LIB,
        "src/counters.rs": HABITS_COUNTERS,
        ".cargo-checksum.json": REGISTRY_CHECKSUM,
    }
    for rel, text in files.items():
        path = root / "habits-0.1.0" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
