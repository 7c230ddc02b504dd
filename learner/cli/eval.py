"""``sleepy-coder eval ...`` and ``sleepy-coder report``: thin typer commands over the harness.

``eval CASES.jsonl...`` is the default sub-command (``eval run``), so ``eval compare A B``
and ``eval continual`` live beside it without a separate verb for the common case.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from learner.cli.app import console, err_console, fail, ready_settings
from learner.errors import SleepyCoderError
from learner.rust.registry import DEBIAN_REGISTRY


class _DefaultRunGroup(TyperGroup):
    """Treats ``eval CASES...`` as ``eval run CASES...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_DefaultRunGroup,
    help="Evaluate fix strategies on benchmark cases (JSON Lines), with intervals; compare runs.",
    no_args_is_help=True,
)

CasesArg = Annotated[list[Path], typer.Argument(help="Case files (JSON Lines), e.g. ../shared/bench/*.jsonl.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Run only the first N runnable cases.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="Cases run in parallel.")]
AttemptsOpt = Annotated[int | None, typer.Option("--attempts", help="Model attempts per error (pass@K).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model: 'embedded:...' (default), an id or a folder.")]
CrateRootOpt = Annotated[
    Path,
    typer.Option(
        "--crate-root",
        help="Registry folder that 'crate' cases name their crates in "
        "(apt-get install librust-NAME-dev fills the default).",
    ),
]


def _print_run(store: Any, run_id: int) -> None:
    from learner.eval.tables import cells, headers, run_rows

    run = store.eval_run(run_id)
    results = store.eval_results(run_id)
    seeds = len(run.seeds)
    table = Table(title=f"run {run.id}: {run.strategy} ({run.model or '-'}), pass@k with k={run.attempts}")
    for head in headers(run.attempts, seeds):
        table.add_column(head)
    for row in run_rows(results):
        table.add_row(*cells(row, run.attempts, seeds))
    console.print(table)
    skipped = run.meta.get("skipped") or []
    if skipped:
        console.print(f"skipped {len(skipped)} case(s):")
        for entry in skipped:
            console.print(f"  [dim]{escape(entry['id'])}: {escape(entry['reason'])}[/]")
    leak = run.meta.get("leakage") or {}
    console.print(
        f"leakage check: {leak.get('training_sets', 0)} training set(s), "
        f"{leak.get('training_examples', 0)} example(s), {len(leak.get('refused', []))} refused"
    )
    console.print(f"run id: [bold]{run.id}[/]  project {run.project_version}  {run.meta.get('seconds', '?')} s")


@eval_app.command("run")
def run_cmd(
    cases: CasesArg,
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="Strategy name (see `eval strategies`).")] = "rustc",
    attempts: AttemptsOpt = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Samples per case (temperature > 0) for model strategies.")] = 1,
    limit: LimitOpt = None,
    jobs: JobsOpt = 2,
    temperature: Annotated[float, typer.Option(help="Sampling temperature when --seeds > 1.")] = 0.7,
    include_invalid: Annotated[
        bool, typer.Option("--include-invalid", help="Also run cases marked valid_case=false.")
    ] = False,
    model: ModelOpt = None,
    crate_root: CrateRootOpt = DEBIAN_REGISTRY,
    candidates: Annotated[
        int | None, typer.Option("--candidates", help="Model candidates per attempt (default: the setting).")
    ] = None,
) -> None:
    """Run each case through the editor's pipeline with one strategy, grade it, and record the run."""
    from learner.eval.cases import load_cases
    from learner.eval.runner import run_eval
    from learner.store import Store

    settings = ready_settings(model)
    if candidates is not None:
        settings = dataclasses.replace(settings, candidates=max(1, candidates))
    try:
        case_set = load_cases(cases, include_invalid=include_invalid, limit=limit, crate_root=crate_root)
        with Store.open(settings) as store:
            result = run_eval(
                case_set,
                strategy,
                settings,
                store,
                attempts=attempts,
                seeds=seeds,
                jobs=jobs,
                temperature=temperature,
                progress=lambda message, _fraction: err_console.print(f"[dim]{escape(message)}[/]"),
            )
            _print_run(store, result.run_id)
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None


@eval_app.command("compare")
def compare_cmd(
    run_a: Annotated[int, typer.Argument(help="Run id A.")],
    run_b: Annotated[int, typer.Argument(help="Run id B.")],
) -> None:
    """Paired comparison of two runs: cases that flipped each way and the exact McNemar p-value."""
    from learner.stats import paired_comparison
    from learner.store import Store

    settings = ready_settings()
    try:
        with Store.open(settings) as store:
            runs = [store.eval_run(run_a), store.eval_run(run_b)]
            outcomes = [_first_seed_outcomes(store.eval_results(r.id)) for r in runs]
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None
    cmp = paired_comparison(outcomes[0], outcomes[1])
    console.print(f"A = run {runs[0].id} ({runs[0].strategy}), B = run {runs[1].id} ({runs[1].strategy})")
    console.print(f"both pass: {cmp.both}   neither: {cmp.neither}")
    console.print(f"only A passes ({len(cmp.only_a)}): {', '.join(cmp.only_a) or '-'}")
    console.print(f"only B passes ({len(cmp.only_b)}): {', '.join(cmp.only_b) or '-'}")
    if cmp.missing:
        console.print(f"[dim]{len(cmp.missing)} case(s) ran in only one of the runs (left out)[/]")
    console.print(f"exact McNemar two-sided p = {cmp.p_value:.4g}")


def _first_seed_outcomes(results: list[Any]) -> dict[str, bool]:
    """pass@K per case; with several seeds, a case passes when most of its seeds did."""
    votes: dict[str, list[bool]] = {}
    for r in results:
        votes.setdefault(r.case_id, []).append(r.passed)
    return {case: 2 * sum(v) > len(v) for case, v in votes.items()}


@eval_app.command("continual")
def continual_cmd(
    cases: CasesArg,
    limit: LimitOpt = None,
    jobs: JobsOpt = 2,
    attempts: AttemptsOpt = None,
    model: ModelOpt = None,
    crate_root: CrateRootOpt = DEBIAN_REGISTRY,
) -> None:
    """Continual-learning protocol: after each learned family, evaluate every family (accuracy matrix)."""
    from learner.eval.cases import load_cases
    from learner.eval.continual import continual_runs
    from learner.eval.runner import run_continual
    from learner.model.adapters import NoAdapters
    from learner.store import Store

    settings = ready_settings(model)
    try:
        case_set = load_cases(cases, limit=limit, crate_root=crate_root)
        with Store.open(settings) as store:
            run_continual(
                case_set,
                settings,
                store,
                attempts=attempts,
                jobs=jobs,
                progress=lambda message, _fraction: err_console.print(f"[dim]{escape(message)}[/]"),
            )
            result = continual_runs(store)
    except NoAdapters as exc:
        raise fail(f"cannot run the continual protocol: {exc}") from None
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None
    if result is None:
        raise fail("the protocol recorded no runs")
    table = Table(title="accuracy after each learning step (rows) per family (columns)")
    table.add_column("after learning")
    for family in result.families:
        table.add_column(family)
    for family, row in zip(result.families, result.matrix, strict=False):
        table.add_row(family, *("-" if v is None else f"{100 * v:.0f}%" for v in row))
    console.print(table)
    console.print(f"average accuracy {100 * result.average_accuracy:.1f}%")
    for family, value in result.forgetting.items():
        console.print(f"forgetting {family}: {100 * value:.1f} points")


@eval_app.command("strategies")
def strategies_cmd() -> None:
    """List the registered strategies."""
    from learner.eval.strategies import strategy_names

    for name in strategy_names():
        console.print(name)


def report_cmd(
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: the reports dir).")] = None,
) -> None:
    """Write PNG figures and summary.md from the recorded runs, cycles and adapter metrics."""
    from learner.eval.reports import write_report
    from learner.store import Store

    settings = ready_settings()
    target = out or settings.reports_dir
    try:
        with Store.open(settings) as store:
            report = write_report(store, target)
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None
    for path in report.files:
        console.print(f"wrote {path}")
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.command("report")(report_cmd)
