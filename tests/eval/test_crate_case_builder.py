"""Building crate cases: mutants of a real crate's files confirmed by cargo, only from allowed crates."""

from __future__ import annotations

from pathlib import Path

import pytest

from learner.config import Settings
from learner.eval.cases import parse_case
from learner.eval.crate_cases import CrateCaseConfig, CrateNotAllowed, CrateReport, allowed_crates, crate_cases
from learner.rust.registry import read_package_list, registry_crates
from tests.rust_fixtures import make_registry


def test_cases_are_real_errors_in_the_crate_with_the_original_file_as_the_fix(
    tmp_path: Path, settings: Settings
) -> None:
    root = make_registry(tmp_path / "registry")
    crate = next(c for c in registry_crates(root) if c.name == "tinylib")
    reports: list[CrateReport] = []
    rows = list(crate_cases(settings, crate, CrateCaseConfig(per_crate=4, per_operator=2), reports.append))
    assert rows, reports
    assert len(rows) <= 4 and len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["kind"] == "crate" and row["crate"] == "tinylib-0.2.0"
        original = (crate.path / row["file"]).read_text()
        assert row["fixed"] == original and row["broken"] != original
        assert row["error_codes"] and all(c.startswith("E") for c in row["error_codes"])
        case = parse_case(row, "dev", root)
        assert case.crate is not None and case.program_file == row["file"]
    [report] = reports
    assert report.crate == "tinylib-0.2.0" and report.cases == len(rows) and report.problem is None
    # The same seed draws the same set.
    again = list(crate_cases(settings, crate, CrateCaseConfig(per_crate=4, per_operator=2)))
    assert [r["id"] for r in again] == [r["id"] for r in rows]


def test_a_crate_whose_package_is_not_on_the_list_is_refused(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "registry")
    listed = tmp_path / "train.txt"
    listed.write_text("# allowed\nlibrust-tinylib-dev\n\n")
    allowed = read_package_list(listed)
    assert allowed == frozenset({"librust-tinylib-dev"})
    crates = registry_crates(root)
    with pytest.raises(CrateNotAllowed, match=r"tinydep-0.1.0 \(librust-tinydep-dev\)"):
        allowed_crates(crates, allowed)
    assert [c.name for c in allowed_crates([c for c in crates if c.name == "tinylib"], allowed)] == ["tinylib"]
