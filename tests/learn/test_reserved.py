"""Reserved sites: the items an evaluation will break tomorrow are never trained on or practised."""

from __future__ import annotations

from pathlib import Path

from learner.config import Settings
from learner.learn.benchmark import BenchmarkGuard
from learner.learn.curriculum import CurriculumConfig, build_curriculum, load_training_set
from learner.learn.reserved import example_site, load_reserved, site_key, write_reserved
from tests.learn.test_practice import MODULES, _module
from tests.rust_fixtures import make_crate

CODE = """pub fn a() -> i32 {
    let mut x = 1;
    x += 1;
    x
}

pub fn b() -> i32 {
    2
}
"""


def test_a_site_is_its_item_whatever_the_offset_inside_it_or_the_layout() -> None:
    inside_a = [CODE.index("let mut"), CODE.index("x += 1")]
    assert site_key("src/lib.rs", CODE, inside_a[0]) == site_key("src/lib.rs", CODE, inside_a[1])
    assert site_key("src/lib.rs", CODE, inside_a[0]) != site_key("src/lib.rs", CODE, CODE.index("2\n"))
    reformatted = CODE.replace("    let mut x = 1;", "    let  mut x   = 1;  // one")
    assert site_key("src/lib.rs", reformatted, inside_a[0]) == site_key("src/lib.rs", CODE, inside_a[0])
    assert site_key("src/other.rs", CODE, inside_a[0]) != site_key("src/lib.rs", CODE, inside_a[0])


def test_the_list_round_trips_and_a_missing_or_broken_file_reserves_nothing(settings: Settings) -> None:
    assert load_reserved(settings) == frozenset()
    write_reserved(settings, ["k2", "k1", "k1"])
    assert load_reserved(settings) == {"k1", "k2"}
    settings.reserved_sites_path.write_text("{not json")
    assert load_reserved(settings) == frozenset()


def test_the_curriculum_neither_trains_nor_practises_on_a_reserved_item(settings: Settings, tmp_path: Path) -> None:
    files = {f"src/m{i}.rs": _module(i) for i in range(MODULES)}
    files["src/lib.rs"] = "".join(f"pub mod m{i};\n" for i in range(MODULES))
    root = make_crate(tmp_path / "app", files)
    config = CurriculumConfig(per_route=40, crates=(root,), use_docs=False, use_store=False, max_checks=400)
    free = build_curriculum(settings, config, leakage=BenchmarkGuard(), record=False)
    seen = [e for rows in [*free.examples.values(), *free.practice.values()] for e in rows]
    # Reserve half of the items the curriculum used: none of their mutants may come back.
    items = sorted({example_site(e) for e in seen} - {None})
    assert len(items) >= 4, free.stats
    reserved = set(items[::2])
    write_reserved(settings, reserved)
    result = build_curriculum(settings, config, leakage=BenchmarkGuard())
    training = [e for path in result.files.values() for e in load_training_set(path)]
    practice = [e for rows in result.practice.values() for e in rows]
    assert training and result.stats["reserved"] > 0
    assert not {example_site(e) for e in training + practice} & reserved
