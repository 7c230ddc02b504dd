"""The learning curve in the report: each night's candidate on the gate's own evidence, per route."""

from __future__ import annotations

from pathlib import Path

from learner.config import Settings
from learner.eval.learning_curve import learning_curves
from learner.eval.reports import write_report
from learner.learn.gate import GateDecision, GateResult, ScoreLine, record_decision
from learner.records import SHARE_ROUTE
from learner.stats import Rate
from learner.store import Store


def _night(store: Store, version: str, lines: dict[str, tuple[Rate, Rate]], promote: bool, tmp: Path) -> None:
    folder = tmp / version
    folder.mkdir()
    candidate = store.register_candidate(version, route=SHARE_ROUTE, path=folder)
    decision = GateDecision(promote, "test", tuple(ScoreLine(n, b, a) for n, (b, a) in lines.items()), ("mutability",))
    record_decision(store, candidate, GateResult(decision))


def test_each_night_is_a_point_on_its_routes_evidence_and_promotions_are_marked(
    settings: Settings, tmp_path: Path
) -> None:
    with Store.open(settings) as store:
        _night(store, "v1", {"practice:mutability": (Rate(2, 16), Rate(3, 16))}, False, tmp_path)
        _night(store, "v2", {"practice:mutability": (Rate(2, 16), Rate(9, 16))}, True, tmp_path)
        _night(
            store,
            "v3",
            {"mutability": (Rate(1, 4), Rate(3, 4)), "practice:mutability": (Rate(9, 16), Rate(10, 16))},
            True,
            tmp_path,
        )
        curves = learning_curves(store.adapters())
        report = write_report(store, tmp_path / "report")
    points = curves["mutability"]
    assert [(p.version, p.after, p.promoted, p.evidence) for p in points] == [
        ("v1", Rate(3, 16), False, "practice"),
        ("v2", Rate(9, 16), True, "practice"),
        ("v3", Rate(3, 4), True, "held-out fixes"),  # the user's own fixes, once there are any
    ]
    assert tmp_path / "report" / "learning_curve.png" in report.files
    import matplotlib.image as mpimg

    assert mpimg.imread(tmp_path / "report" / "learning_curve.png").std() > 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "- mutability: before 12.5% (2/16) [3.5, 36.0]; v1 18.8% (3/16) [6.6, 43.0] on practice; " in summary
    assert "v3 75.0% (3/4) [30.1, 95.4] on held-out fixes, promoted" in summary
