"""The prompt shows the error's item and the items it points at; answers become edits of those regions only."""

from __future__ import annotations

from pathlib import Path

from learner.fix.prompt import build_prompt, collect_regions, format_answer, parse_answer
from learner.fix.router import route_for
from learner.rust.check import check
from learner.rust.crate import locate_crate
from tests.rust_fixtures import MOVED_VALUE_BIN, make_crate

TWO_FILES = {
    "src/main.rs": 'mod shapes;\n\nfn main() {\n    let p = shapes::Point { x: 1 };\n    println!("{:?}", p);\n}\n',
    "src/shapes.rs": "pub struct Point {\n    pub x: i32,\n}\n",
}


def _first_error(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    crate = locate_crate(root)
    return crate, check(crate, tmp_path / "target").errors[0]


def test_missing_derive_prompt_includes_the_type_definition_in_another_file(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", TWO_FILES), tmp_path)
    regions = collect_regions(crate.root, error)
    assert [(r.region.file, r.region.label) for r in regions] == [
        ("src/main.rs", "fn main"),
        ("src/shapes.rs", "struct Point"),
    ]
    prompt = build_prompt(error, route_for(error), regions)
    user = prompt.messages[1]["content"]
    assert "// file: src/shapes.rs (struct Point)" in user
    assert "// <- error[E0277]" in user, "the error's line is marked"
    assert "Hint:" in user


def test_answer_for_the_second_region_edits_only_that_file(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", TWO_FILES), tmp_path)
    regions = collect_regions(crate.root, error)
    prompt = build_prompt(error, route_for(error), regions)
    fixed = "#[derive(Debug)]\npub struct Point {\n    pub x: i32,\n}\n"
    answer = "Here you go:\n" + format_answer([(regions[1].region, fixed)])
    [edit] = parse_answer(answer, prompt)
    assert edit.file == "src/shapes.rs" and edit.new_text == fixed
    assert (edit.byte_start, edit.byte_end) == (regions[1].region.byte_start, regions[1].region.byte_end)


def test_markers_echoed_by_the_model_are_stripped_and_unchanged_blocks_give_no_edit(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}), tmp_path)
    regions = collect_regions(crate.root, error)
    prompt = build_prompt(error, route_for(error), regions)
    echoed = f"```rust\n{regions[0].display}```"
    assert parse_answer(echoed, prompt) == ()
    fixed = regions[0].display.replace("let t = s;", "let t = s.clone();").replace("// <- error[E0382]", "// <- fixed")
    [edit] = parse_answer(f"```rust\n{fixed}```", prompt)
    assert "s.clone()" in edit.new_text and "// <-" not in edit.new_text


def test_unterminated_block_is_ignored(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}), tmp_path)
    prompt = build_prompt(error, route_for(error), collect_regions(crate.root, error))
    assert parse_answer("```rust\nfn main() {\n    let t = s.clone();\n", prompt) == ()


def test_retry_history_becomes_assistant_and_user_turns(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}), tmp_path)
    regions = collect_regions(crate.root, error)
    prompt = build_prompt(error, route_for(error), regions, [("answer one", "rejected: still E0382")])
    assert [m["role"] for m in prompt.messages] == ["system", "user", "assistant", "user"]


def test_search_replace_answers_change_only_the_named_lines_in_the_right_region(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", TWO_FILES), tmp_path)
    regions = collect_regions(crate.root, error)
    prompt = build_prompt(error, route_for(error), regions, answer_format="search-replace")
    assert prompt.answer_format == "search-replace"
    assert prompt.messages[1]["content"].rstrip().endswith(">>>>>>> REPLACE")
    answer = (
        "```\n<<<<<<< SEARCH\npub struct Point {\n=======\n#[derive(Debug)]\npub struct Point {\n>>>>>>> REPLACE\n```"
    )
    [edit] = parse_answer(answer, prompt)
    assert edit.file == "src/shapes.rs"
    assert edit.new_text == "#[derive(Debug)]\npub struct Point {\n    pub x: i32,\n}\n"


def test_search_replace_matches_lines_whatever_their_indentation_and_our_markers(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}), tmp_path)
    prompt = build_prompt(error, route_for(error), collect_regions(crate.root, error), answer_format="search-replace")
    # The model dropped the indentation and copied the error marker into SEARCH.
    answer = (
        '<<<<<<< SEARCH\nprintln!("{} {}", s, t);  // <- error[E0382]\n=======\n'
        'println!("{} {}", s.clone(), t);\n>>>>>>> REPLACE\n'
    )
    [edit] = parse_answer(answer, prompt)
    assert '\n    println!("{} {}", s.clone(), t);\n' in edit.new_text
    assert "// <-" not in edit.new_text
    nowhere = "<<<<<<< SEARCH\nlet z = 1;\n=======\nlet z = 2;\n>>>>>>> REPLACE\n"
    assert parse_answer(nowhere, prompt) == ()


def test_a_search_replace_prompt_still_reads_a_corrected_block(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}), tmp_path)
    regions = collect_regions(crate.root, error)
    prompt = build_prompt(error, route_for(error), regions, answer_format="search-replace")
    fixed = regions[0].text.replace("let t = s;", "let t = s.clone();")
    [edit] = parse_answer(f"```rust\n{fixed}```", prompt)
    assert "s.clone()" in edit.new_text


def test_an_unknown_answer_format_is_named_in_the_error(tmp_path: Path) -> None:
    import pytest

    from learner.fix.prompt import UnknownAnswerFormat

    crate, error = _first_error(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}), tmp_path)
    with pytest.raises(UnknownAnswerFormat, match="known: item, search-replace, line-range"):
        build_prompt(error, route_for(error), collect_regions(crate.root, error), answer_format="diff")


def test_line_range_prompts_number_each_line_as_the_file_and_rustc_do(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", TWO_FILES), tmp_path)
    prompt = build_prompt(error, route_for(error), collect_regions(crate.root, error), answer_format="line-range")
    content = prompt.messages[1]["content"]
    assert "--> src/main.rs:5:" in content, "rustc's rendered error counts file lines ..."
    assert '5|     println!("{:?}", p);  // <- error[E0277]' in content, "... and so do the shown regions"
    assert "1| pub struct Point {" in content
    assert content.rstrip().endswith("(without the numbers).")


def test_line_range_answers_replace_the_named_lines_of_the_right_file(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", TWO_FILES), tmp_path)
    prompt = build_prompt(error, route_for(error), collect_regions(crate.root, error), answer_format="line-range")
    answer = "REPLACE LINES 1-1 OF `src/shapes.rs`\n```rust\n1| #[derive(Debug)]\npub struct Point {\n```\n"
    [edit] = parse_answer(answer, prompt)
    assert edit.file == "src/shapes.rs"
    assert edit.new_text == "#[derive(Debug)]\npub struct Point {\n    pub x: i32,\n}\n"
    # No file named: the first region holding the lines (the error's); outside every region: ignored.
    [main] = parse_answer("REPLACE LINE 4\n```rust\n    let p = shapes::Point { x: 2 };\n```", prompt)
    assert main.file == "src/main.rs" and "x: 2" in main.new_text
    assert parse_answer("REPLACE LINES 4-9\n```rust\nx\n```", prompt) == ()
    assert parse_answer("REPLACE LINES 1-1 OF src/other.rs\n```rust\nx\n```", prompt) == ()


def test_a_line_range_answer_may_change_several_ranges_or_give_the_whole_region(tmp_path: Path) -> None:
    crate, error = _first_error(make_crate(tmp_path / "c", {"src/main.rs": MOVED_VALUE_BIN}), tmp_path)
    prompt = build_prompt(error, route_for(error), collect_regions(crate.root, error), answer_format="line-range")
    answer = (
        "REPLACE LINES 3-3\n```rust\n    let t = s.clone();\n```\n"
        'REPLACE LINES 4 to 4\n```rust\n    println!("{} {}", s, t);  // <- error[E0382]\n```\n'
    )
    [edit] = parse_answer(answer, prompt)
    fixed = MOVED_VALUE_BIN.replace("let t = s;", "let t = s.clone();")
    assert edit.new_text == fixed
    numbered = "\n".join(f"{i + 1}| {line}" for i, line in enumerate(fixed.rstrip().split("\n")))
    [whole] = parse_answer(f"```rust\n{numbered}\n```", prompt)  # the whole region, numbers copied
    assert whole.new_text == fixed
