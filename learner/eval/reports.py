"""``sleepy-coder report``: PNG figures and a Markdown summary from what the store holds.

Every figure shows n and Wilson 95% intervals where it shows a rate. A figure whose data does
not exist yet (no continual runs, no learner cycles, no training metrics) is omitted and the
summary says so, rather than drawing an empty or made-up chart. matplotlib uses the Agg
backend and is imported only here, only when a report is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from learner.eval.continual import average_accuracy, average_forgetting, continual_runs
from learner.eval.learning_curve import CurvePoint, learning_curves
from learner.eval.runner import samples_from_results
from learner.eval.tables import run_rows, to_markdown
from learner.stats import Rate, summarise, wilson_interval
from learner.store import AdapterVersion, EvalRun, Store

#: Keys the learner may use for an evaluated pass rate in a cycle's details or an adapter's metrics.
PASS_RATE_KEYS = ("pass_rate", "eval_pass_rate", "val_pass_rate", "heldout_pass_rate", "accuracy")
LOSS_KEYS = ("loss_curve", "losses", "train_loss", "loss")
PARAM_KEYS = ("trainable_parameters", "trainable_params", "parameters")


@dataclass
class Report:
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class CaseSet:
    """The cases a run graded (its identity) and a name for people (its case files and size)."""

    case_ids: frozenset[str]
    name: str


def case_set_of(store: Store, run: EvalRun) -> CaseSet:
    ids = frozenset(r.case_id for r in store.eval_results(run.id))
    files = ", ".join(Path(f).name for f in run.meta.get("case_files", [])) or "unnamed cases"
    return CaseSet(ids, f"{files} ({len(ids)} cases)")


def latest_per_strategy(store: Store, limit: int = 500) -> tuple[CaseSet | None, list[EvalRun]]:
    """The newest finished run of each strategy on the case set of the newest run (continual
    protocol runs excluded): strategies are compared only on the same cases, never a run on one
    case file beside a run on another."""
    runs = [r for r in store.latest_runs(limit=limit) if "continual" not in r.meta]
    if not runs:
        return None, []
    wanted = case_set_of(store, runs[0])
    seen: dict[str, EvalRun] = {}
    for run in runs:
        if run.strategy not in seen and case_set_of(store, run).case_ids == wanted.case_ids:
            seen[run.strategy] = run
    return wanted, sorted(seen.values(), key=lambda r: r.strategy)


def _errbar(rate: Rate) -> tuple[float, float]:
    lo, hi = rate.interval
    return (max(0.0, rate.value - lo), max(0.0, hi - rate.value))


def plot_strategies(store: Store, runs: Sequence[EvalRun], path: Path, case_set: str = "") -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(runs) + 2), 4.5))
    width = 0.38
    for i, run in enumerate(runs):
        summary = summarise(samples_from_results(store.eval_results(run.id)))["all"]
        bars = [("pass@1", summary.pass_at_1, "tab:blue", -width / 2)]
        if run.attempts > 1:
            bars.append((f"pass@{run.attempts}", summary.pass_at_k, "tab:orange", width / 2))
        for label, rate, colour, offset in bars:
            x = i + (offset if run.attempts > 1 else 0)
            lo, hi = _errbar(rate)
            ax.bar(x, 100 * rate.value, width, color=colour, label=label if i == 0 or run.attempts > 1 else None)
            ax.errorbar(x, 100 * rate.value, yerr=[[100 * lo], [100 * hi]], color="black", capsize=4)
            ax.text(x, 100 * rate.value + 100 * hi + 2, f"n={rate.n}", ha="center", fontsize=8)
    ax.set_xticks(range(len(runs)), [f"{r.strategy}\n(run {r.id})" for r in runs])
    ax.set_ylim(0, 115)
    ax.set_ylabel("cases fixed (%)")
    on = f" on {case_set}" if case_set else ""
    ax.set_title(f"Fix rate per strategy{on} (latest run each), Wilson 95% intervals", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=False))
    ax.legend(unique.values(), unique.keys(), loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_routes(store: Store, runs: Sequence[EvalRun], path: Path) -> None:
    plt = _pyplot()
    per_run = [summarise(samples_from_results(store.eval_results(r.id)), "route") for r in runs]
    routes = sorted({route for summary in per_run for route in summary})
    values = [[summary[rt].pass_at_k.value if rt in summary else math.nan for rt in routes] for summary in per_run]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(routes) + 3), max(3, 0.7 * len(runs) + 2)))
    image = ax.imshow([[100 * v for v in row] for row in values], vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for i, summary in enumerate(per_run):
        for j, route in enumerate(routes):
            if route in summary:
                rate = summary[route].pass_at_k
                colour = "white" if rate.value < 0.6 else "black"
                ax.text(
                    j, i, f"{100 * rate.value:.0f}%\nn={rate.n}", ha="center", va="center", fontsize=7, color=colour
                )
    ax.set_xticks(range(len(routes)), routes, rotation=40, ha="right")
    ax.set_yticks(range(len(runs)), [r.strategy for r in runs])
    ax.set_title("Fix rate per route (error family) and strategy")
    fig.colorbar(image, ax=ax, label="fixed (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_matrix(families: Sequence[str], matrix: Sequence[Sequence[float | None]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.0 * len(families) + 3), max(4, 0.7 * len(matrix) + 2)))
    data = [[math.nan if v is None else 100 * v for v in row] for row in matrix]
    image = ax.imshow(data, vmin=0, vmax=100, cmap="magma", aspect="auto")
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if v is not None:
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", color="white" if v < 0.6 else "black")
    ax.set_xticks(range(len(families)), families, rotation=40, ha="right")
    ax.set_yticks(range(len(matrix)), [f"after {f}" for f in families[: len(matrix)]])
    ax.set_xlabel("evaluated family")
    ax.set_ylabel("learning step")
    ax.set_title("Continual learning: accuracy matrix (forgetting = drop down a column)")
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _number(mapping: dict[str, Any], keys: Iterable[str]) -> float | None:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, dict):
            value = _number(value, PASS_RATE_KEYS)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def progress_points(store: Store) -> list[tuple[str, float]]:
    """(label, pass rate) per learner cycle that recorded one, oldest first; else per adapter version."""
    points = []
    for cycle in reversed(store.cycles(limit=1000)):
        value = _number(cycle.details, (*PASS_RATE_KEYS, "eval"))
        if value is not None:
            points.append((f"cycle {cycle.id}", value))
    if points:
        return points
    for adapter in reversed(store.adapters()):
        value = _number(adapter.metrics, (*PASS_RATE_KEYS, "eval"))
        if value is not None:
            points.append((adapter.version, value))
    return points


def plot_progress(points: Sequence[tuple[str, float]], baseline: tuple[str, Rate] | None, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = list(range(1, len(points) + 1))
    ax.plot(xs, [100 * v if v <= 1 else v for _, v in points], marker="o", label="learner")
    if baseline is not None:
        name, rate = baseline
        lo, hi = rate.interval
        ax.axhspan(100 * lo, 100 * hi, color="grey", alpha=0.25, label=f"{name} baseline (95% CI)")
        ax.axhline(100 * rate.value, color="grey", linestyle="--")
    ax.set_xticks(xs, [label for label, _ in points], rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_xlabel("learner cycle")
    ax.set_ylabel("fixed (%)")
    ax.set_title("Progress over learner cycles")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(curves: dict[str, list[CurvePoint]], path: Path) -> None:
    """Per route and night, the score the gate compared (square: the active adapters, circle: the
    candidate, with its 95% interval; filled when promoted). Routes sit side by side at each night."""
    plt = _pyplot()
    nights = sorted({(p.when, p.version) for points in curves.values() for p in points})
    position = {version: i + 1 for i, (_, version) in enumerate(nights)}
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(nights) + 3), 4.5))
    width = 0.6 / max(1, len(curves))
    for k, (route, points) in enumerate(sorted(curves.items())):
        shift = (k - (len(curves) - 1) / 2) * width
        xs = [position[p.version] + shift for p in points]
        ys = [100 * p.after.value for p in points]
        low = [100 * (p.after.value - p.after.interval[0]) for p in points]
        high = [100 * (p.after.interval[1] - p.after.value) for p in points]
        line = ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=route)
        colour = line.lines[0].get_color()
        befores = [100 * p.before.value for p in points]
        ax.scatter([x - width / 3 for x in xs], befores, marker="s", s=14, color=colour, zorder=3)
        rejected = [(x, y) for x, y, p in zip(xs, ys, points, strict=True) if not p.promoted]
        if rejected:
            ax.scatter(*zip(*rejected, strict=True), marker="o", facecolor="white", edgecolor=colour, zorder=4)
    # The version names are in summary.md; a night is its number and time here.
    ax.set_xticks(range(1, len(nights) + 1), [f"night {i}\n{w:%m-%d %H:%M}" for i, (w, _) in enumerate(nights, 1)])
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("night (the candidate it trained)")
    ax.set_ylabel("fixed (%): held-out fixes, else practice")
    ax.set_title("Learning curve: square = active before; filled = promoted, hollow = rejected", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _curve(value: Any) -> list[float]:
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        return [float(v) for v in value]
    return []


def _training_record(adapter: AdapterVersion) -> dict[str, Any]:
    """The artifact's ``training.json`` (Share sets and the naive baseline write one), or {}."""
    from learner.errors import SleepyCoderError
    from learner.learn.phases import artifact_metrics

    try:
        return artifact_metrics(Path(adapter.path))
    except SleepyCoderError:
        return {}


def loss_curves(adapter: AdapterVersion) -> dict[str, list[float]]:
    """Every loss curve an adapter recorded, by label: its own metrics, else its artifact's phases.

    A Share set records one curve per route and phase (``phase0``/``phase2`` in its
    ``training.json``); the naive baseline one per route in training order (``losses``).
    """
    for key in LOSS_KEYS:
        curve = _curve(adapter.metrics.get(key))
        if curve:
            return {adapter.route: curve}
    record = _training_record(adapter)
    curves: dict[str, list[float]] = {}
    for phase, label in (("phase0", "LoRA"), ("phase2", "coefficients")):
        for route, entry in (record.get(phase) or {}).items():
            curve = _curve(entry.get("losses")) if isinstance(entry, dict) else []
            if curve:
                curves[f"{route} ({label})"] = curve
    losses = record.get("losses")
    if isinstance(losses, dict):
        for route, value in losses.items():
            curve = _curve(value)
            if curve:
                curves[f"{route} ({adapter.route})"] = curve
    return curves


def trainable_parameters(adapter: AdapterVersion) -> dict[str, int]:
    """Trainable parameters per route: a Share set records a count per route, others one number."""
    for key in PARAM_KEYS:
        value = adapter.metrics.get(key)
        if isinstance(value, dict):
            counts = {str(r): int(v) for r, v in value.items() if isinstance(v, int | float)}
            if counts:
                return counts
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return {adapter.route: int(value)}
    return {}


def plot_training(curves: Sequence[tuple[AdapterVersion, dict[str, list[float]]]], path: Path) -> None:
    """One line per (adapter, route/phase) curve, as :func:`loss_curves` labels them."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for adapter, by_label in curves:
        for label, curve in by_label.items():
            ax.plot(range(1, len(curve) + 1), curve, label=f"{label}, {adapter.version[:24]}")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (answer tokens)")
    ax.set_title("Training loss per adapter and route")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(store: Store, out_dir: Path) -> Report:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report()
    md: list[str] = ["# sleepy-coder evaluation report", "", f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", ""]
    case_set, runs = latest_per_strategy(store)
    if runs and case_set is not None:
        plot_strategies(store, runs, out_dir / "strategies.png", case_set.name)
        plot_routes(store, runs, out_dir / "routes.png")
        report.files += [out_dir / "strategies.png", out_dir / "routes.png"]
        md += [
            "## Strategies",
            "",
            f"Compared on one case set: {case_set.name} (the newest run's; runs on other cases are left out).",
            "",
            "![fix rate per strategy](strategies.png)",
            "",
            "![per route](routes.png)",
            "",
        ]
        for run in runs:
            leak = run.meta.get("leakage") or {}
            md += [
                f"### {run.strategy} (run {run.id})",
                "",
                f"Model `{run.model or '-'}`, adapters {run.adapter_versions or 'none'},"
                f" project `{run.project_version}`,"
                f" seeds {list(run.seeds)}, attempts {run.attempts}, started {run.started_at:%Y-%m-%d %H:%M} UTC,"
                f" case files {', '.join(run.meta.get('case_files', [])) or '-'}.",
                f"Leakage check {'ran' if leak.get('checked') else 'did not run'}: "
                f"{leak.get('training_sets', 0)} training set(s), {leak.get('training_examples', 0)} example(s), "
                f"{len(leak.get('refused', []))} case(s) refused. Skipped: {len(run.meta.get('skipped', []))} case(s).",
                "",
                to_markdown(run_rows(store.eval_results(run.id)), run.attempts, len(run.seeds)),
            ]
    else:
        report.notes.append("no finished evaluation runs yet: run `sleepy-coder eval CASES.jsonl --strategy rustc`")

    continual = continual_runs(store)
    if continual is not None and continual.matrix:
        plot_matrix(continual.families, continual.matrix, out_dir / "forgetting.png")
        report.files.append(out_dir / "forgetting.png")
        forget = average_forgetting(continual.matrix)
        md += [
            "## Continual learning",
            "",
            "![accuracy matrix](forgetting.png)",
            "",
            f"Average accuracy {100 * average_accuracy(continual.matrix):.1f}%; average forgetting "
            + (f"{100 * forget:.1f} points." if forget is not None else "n/a (one step)."),
            "",
        ]
    else:
        report.notes.append("forgetting matrix omitted: no continual-protocol runs (`sleepy-coder eval continual`)")

    points = progress_points(store)
    if points:
        baseline_run = next((r for r in runs if r.strategy == "rustc"), None)
        baseline = None
        if baseline_run is not None:
            rate = summarise(samples_from_results(store.eval_results(baseline_run.id)))["all"].pass_at_1
            baseline = ("rustc", rate)
        plot_progress(points, baseline, out_dir / "progress.png")
        report.files.append(out_dir / "progress.png")
        md += ["## Progress over learner cycles", "", "![progress](progress.png)", ""]
    else:
        report.notes.append("progress plot omitted: no learner cycle or adapter has recorded an evaluated pass rate")

    adapters = store.adapters()
    nightly = learning_curves(adapters)
    if nightly:
        plot_learning_curves(nightly, out_dir / "learning_curve.png")
        report.files.append(out_dir / "learning_curve.png")
        md += ["## Learning curve", "", "Each night's candidate on the gate's evidence, per route.", ""]
        md += ["![learning curve](learning_curve.png)", ""]
        for route, route_points in sorted(nightly.items()):
            said = "; ".join(
                f"{p.version} {p.after.format()} on {p.evidence}{', promoted' if p.promoted else ''}"
                for p in route_points
            )
            md.append(f"- {route}: before {route_points[0].before.format()}; {said}")
        md.append("")
    else:
        report.notes.append("learning curve omitted: no candidate has been through the gate yet")
    with_loss = [(a, curves) for a in adapters if (curves := loss_curves(a))]
    if with_loss:
        plot_training(with_loss, out_dir / "training.png")
        report.files.append(out_dir / "training.png")
        md += ["## Training", "", "![training loss](training.png)", ""]
    else:
        report.notes.append("training-loss plot omitted: no adapter has recorded a loss curve")
    rows = [(a, route, n) for a in adapters for route, n in trainable_parameters(a).items()]
    if rows:
        md += [
            "| adapter | status | route | trainable parameters | r=8 LoRA on the same modules |",
            "|---|---|---|---|---|",
        ]
        for adapter, route, n in rows:
            lora = adapter.metrics.get("lora_equivalent_parameters")
            versus = f"{int(lora):,} ({lora / max(n, 1):.0f}x)" if isinstance(lora, int | float) else "-"
            md.append(f"| {adapter.version} | {adapter.status} | {route} | {n:,} | {versus} |")
        md.append("")
    else:
        report.notes.append("trainable-parameter summary omitted: no adapter has recorded its parameter count")

    if report.notes:
        md += ["## Not shown", "", *(f"- {note}" for note in report.notes), ""]
    summary = out_dir / "summary.md"
    summary.write_text("\n".join(md), encoding="utf-8")
    report.files.append(summary)
    return report


__all__ = ["Report", "latest_per_strategy", "wilson_interval", "write_report"]
