"""The curriculum: rustc-confirmed mutants of correct code, in the inference prompt format, without leakage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from learner.config import Settings
from learner.fix.prompt import SYSTEM_PROMPT
from learner.fix.router import ROUTES, route_for_code
from learner.learn.benchmark import BenchmarkGuard
from learner.learn.curriculum import (
    CurriculumConfig,
    Snippet,
    build_curriculum,
    doc_snippets,
    docs_root,
    load_training_set,
    source_hash,
)
from learner.records import Edit, FixCandidate, RustDiagnostic, Span
from learner.rust.check import check
from learner.rust.crate import CrateRef
from learner.rust.normalise import normalise_rust
from learner.store import Store

CORPUS = (
    Snippet(
        "test:loop",
        """fn main() {
    let mut total = 0;
    let items = vec![1, 2, 3];
    for value in items.iter() {
        total += value;
    }
    let name = String::from("ferris");
    let copy = name.clone();
    println!("{} {} {}", total, name, copy);
}
""",
    ),
    Snippet(
        "test:point",
        """struct Point {
    x: i32,
    y: i32,
}

fn make() -> Point {
    Point { x: 1, y: 2 }
}

fn main() {
    let p = make();
    let mut count = 0;
    count += p.x + p.y;
    println!("{}", count);
}
""",
    ),
    Snippet(
        "test:greet",
        """fn greet(name: &str) -> String {
    let text: String = name.to_string();
    text
}

fn main() {
    let mut s = String::new();
    s.push_str(&greet("a"));
    println!("{}", s);
}
""",
    ),
)


def _codes(tmp: Path, code: str, crate_type: str, file: str, edition: str = "2021") -> list[str]:
    """Error codes of ``code`` compiled alone by the real rustc."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / file).write_text(code)
    crate = CrateRef(root=tmp, single_file=file, crate_type=crate_type, edition=edition)
    return [d.code or "-" for d in check(crate, tmp / "target", timeout_s=60).errors]


def _config(**kw: object) -> CurriculumConfig:
    return CurriculumConfig(**{"per_route": 3, "use_docs": False, "use_store": False, **kw})  # type: ignore[arg-type]


def test_every_example_fails_with_its_code_and_its_fix_compiles(settings: Settings, tmp_path: Path) -> None:
    result = build_curriculum(settings, _config(), snippets=CORPUS, leakage=BenchmarkGuard())
    examples = [e for rows in result.examples.values() for e in rows]
    assert len({e.route for e in examples}) >= 4, result.stats
    for n, example in enumerate(examples):
        crate_type = "bin" if example.file == "main.rs" else "lib"
        broken_codes = _codes(tmp_path / f"b{n}", example.broken, crate_type, example.file, example.edition)
        assert broken_codes and broken_codes[0] == example.code, example.operator
        assert route_for_code(example.code).name == example.route
        assert _codes(tmp_path / f"f{n}", example.fixed, crate_type, example.file, example.edition) == []


def test_examples_use_the_inference_prompt_and_answer_format(settings: Settings) -> None:
    result = build_curriculum(settings, _config(routes=("mutability",)), snippets=CORPUS, leakage=BenchmarkGuard())
    example = result.examples["mutability"][0]
    assert example.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert ROUTES["mutability"].hint in example.messages[1]["content"]
    assert example.rendered.strip().splitlines()[0] in example.messages[1]["content"]
    match = re.fullmatch(r"```rust\n// file: (\S+) \((.*?)\)\n(.*)\n```", example.answer, re.DOTALL)
    assert match is not None and match.group(1) == example.file
    assert f"// file: {example.file} ({match.group(2)})" in example.messages[1]["content"]
    assert "let mut" in match.group(3) and match.group(3) in example.fixed


def test_training_sets_are_written_and_registered(settings: Settings) -> None:
    result = build_curriculum(
        settings, _config(routes=("mutability", "struct-fields")), snippets=CORPUS, leakage=BenchmarkGuard()
    )
    with Store.open(settings) as store:
        recorded = {s.route: s for s in store.training_sets()}
    for route, path in result.files.items():
        assert path.parent == settings.training_dir
        assert recorded[route].n_examples == len(load_training_set(path)) == len(result.examples[route])


def test_verdicts_are_cached_so_a_rebuild_runs_no_compiler(settings: Settings) -> None:
    first = build_curriculum(settings, _config(), snippets=CORPUS, leakage=BenchmarkGuard(), record=False)
    second = build_curriculum(settings, _config(), snippets=CORPUS, leakage=BenchmarkGuard(), record=False)
    assert first.stats["checks"] > 0 and second.stats["checks"] == 0
    assert {r: len(v) for r, v in first.examples.items()} == {r: len(v) for r, v in second.examples.items()}
    editions = [[e.edition for e in rows] for rows in (*first.examples.values(), *second.examples.values())]
    assert editions[: len(first.examples)] == editions[len(first.examples) :]  # cache hits keep the edition


def test_leakage_check_drops_a_planted_benchmark_case(settings: Settings, tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    planted = CORPUS[1].code.replace("    ", "\t") + "// a comment does not hide it\n"
    (bench / "cases.jsonl").write_text(json.dumps({"id": "x/1", "broken": "fn main() {", "fixed": planted}) + "\n")
    leakage = BenchmarkGuard.from_dirs([bench])
    assert leakage.is_benchmark(CORPUS[1].code)
    result = build_curriculum(settings, _config(), snippets=CORPUS, leakage=leakage, record=False)
    origins = {e.origin for rows in result.examples.values() for e in rows}
    assert "test:point" not in origins and result.stats["leaked_sources"] == 1
    assert "test:loop" in origins


def test_normalisation_ignores_comments_and_layout() -> None:
    assert normalise_rust("fn a() {\n    // hi\n    1\n}\n") == normalise_rust("fn a() { /* x */ 1 }")
    assert source_hash("fn a() { 1 }") != source_hash("fn a() { 2 }")


def _record_fix(store: Store, settings: Settings, before: str, after: str, kind: str, final: str | None = None) -> str:
    span = Span("src/main.rs", 10, 12, 2, 2, 5, 7, is_primary=True)
    diag = RustDiagnostic("error", "cannot assign twice", "E0384", "error[E0384]: cannot assign twice", (span,))
    diag_id = store.record_diagnostic(diag, crate="/c", route="mutability", context=before)
    candidate = FixCandidate(
        edits=(Edit("src/main.rs", 0, len(before), after),), source="model", title=f"fix {kind}", route="mutability"
    )
    fix = store.record_offer(diag_id, candidate, before_text=before, after_text=after, verified=True)
    store.record_outcome(fix.offer_id, kind, final)
    return fix.fix_id


def test_store_fixes_join_and_rejected_ones_never_become_targets(settings: Settings) -> None:
    before = "fn main() {\n    let x = 1;\n    x = 2;\n}\n"
    with Store.open(settings) as store:
        _record_fix(store, settings, before, "fn main() {\n    let mut x = 1;\n    x = 2;\n}\n", "accepted")
        _record_fix(store, settings, before, "fn main() {\n    let x = 2;\n}\n", "rejected")
        _record_fix(
            store, settings, before, "fn main() {}\n", "edited", "fn main() {\n    let mut x = 1;\n    x += 1;\n}\n"
        )
    result = build_curriculum(settings, _config(routes=("mutability",), use_store=True), leakage=BenchmarkGuard())
    rows = [e for e in result.examples["mutability"] if e.source == "store"]
    targets = {e.fixed for e in rows}
    assert "fn main() {\n    let x = 2;\n}\n" not in targets and len(rows) == 2
    edited = next(e for e in rows if e.operator == "user-edited")
    assert edited.weight > next(e for e in rows if e.operator == "user-accepted").weight
    assert "x += 1" in edited.answer and edited.answer.startswith("```rust\n// file: src/main.rs (fn main)")
    with Store.open(settings) as store:
        (recorded,) = store.training_sets(route="mutability")
    assert set(recorded.source_fix_ids) == {e.fix_id for e in rows}


def test_unknown_route_is_a_clear_error(settings: Settings) -> None:
    from learner.learn.curriculum import CurriculumError

    with pytest.raises(CurriculumError, match="unknown or untrainable"):
        build_curriculum(settings, _config(routes=("nope",)), leakage=BenchmarkGuard())


MDBOOK_PAGE = """<main>
<pre class="playground"><code class="language-rust edition2024"><span class="boring">struct User {
</span><span class="boring">    active: bool,
</span><span class="boring">}
</span>fn main() {
    let user = User { active: true };
    println!("{}", user.active);
}</code></pre>
<pre class="playground"><code class="language-rust editable edition2021">\
fn double(x: i32) -&gt; i32 { 2 * x }</code></pre>
<pre><code class="language-rust ignore does_not_compile">fn main() { let x: i32 = "no"; }</code></pre>
<pre><code class="language-console">$ cargo run</code></pre>
<pre><code class="language-rust">let v = vec![1, 2];
println!("{v:?}");</code></pre>
</main>"""


def test_doc_snippets_read_mdbook_playground_blocks_with_hidden_lines(tmp_path: Path) -> None:
    page = tmp_path / "book" / "ch05.html"
    page.parent.mkdir(parents=True)
    page.write_text(MDBOOK_PAGE)
    snippets = list(doc_snippets(tmp_path))
    assert [(s.crate_type, s.edition) for s in snippets] == [("bin", "2024"), ("lib", "2021"), ("bin", "2021")]
    assert "struct User {\n    active: bool,\n}" in snippets[0].code  # the hidden setup lines are kept
    assert "fn double(x: i32) -> i32" in snippets[1].code  # entities decoded
    assert snippets[2].code.startswith("fn main() {\n    let v = vec![1, 2];")  # loose statements wrapped


def test_installed_rust_docs_yield_hundreds_of_snippets() -> None:
    root = docs_root()
    if root is None:
        pytest.skip("the Rust docs are not installed (rustup component add rust-docs)")
    count = sum(1 for _ in zip(range(1000), doc_snippets(root), strict=False))
    assert count >= 1000
