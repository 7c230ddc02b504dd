"""``sleepy-coder learn``: a manual learning run with progress bars (see :mod:`learner.learn.phases`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from learner.cli.app import console, err_console, fail, settings_from
from learner.errors import SleepyCoderError
from learner.learn.train import StepCallback


class RichReporter:
    """One bar per trained unit: step, loss, examples/s and time left."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def message(self, text: str) -> None:
        (self.progress.console if self.progress else err_console).print(escape(text))

    def task(self, label: str, total: int) -> StepCallback:
        bar = self.progress
        task_id = bar.add_task(label, total=total, loss=float("nan"), rate=0.0) if bar else None

        def on_step(step: int, steps: int, loss: float, rate: float, seconds: float) -> None:
            if bar is not None and task_id is not None:
                bar.update(task_id, completed=step, loss=loss, rate=rate)
            else:
                err_console.print(f"{label} step {step}/{steps} loss {loss:.4f} {rate:.2f} ex/s")

        return on_step


def learn(
    route: Annotated[
        list[str] | None, typer.Option("--route", help="Train this route (new or updated); repeatable.")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="Restrict the run (curriculum, every phase, the naive baseline) to this route; repeatable."
        ),
    ] = None,
    share: Annotated[
        list[str] | None,
        typer.Option("--share", help="Set a Share knob, e.g. variance_threshold=0.9 (see ShareConfig); repeatable."),
    ] = None,
    phase: Annotated[int, typer.Option("--phase", min=0, max=3, help="Stop after this phase (0-3).")] = 3,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Optimiser steps per route and phase.")] = 100,
    crate: Annotated[
        list[Path] | None, typer.Option("--crate", help="A crate of yours to learn from; repeatable.")
    ] = None,
    per_route: Annotated[int, typer.Option("--per-route", min=1, help="Training examples per route, at most.")] = 64,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the last interrupted run.")] = False,
    promote: Annotated[bool, typer.Option("--promote", help="Make the result active at once (skip the gate).")] = False,
    naive: Annotated[bool, typer.Option("--naive", help="Also train the naive sequential-LoRA baseline.")] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Start a new basis instead of extending the last one.")
    ] = False,
    no_docs: Annotated[bool, typer.Option("--no-docs", help="Do not learn from the installed Rust docs.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    lora_lr: Annotated[
        float | None, typer.Option("--lora-lr", min=0.0, help="LoRA learning rate (default 2e-4).")
    ] = None,
    coef_lr: Annotated[
        float | None, typer.Option("--coef-lr", min=0.0, help="Phase-2 coefficient learning rate (default 1e-3).")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=32)] = 256,
    model: Annotated[str | None, typer.Option("--model", help="Model folder or id (default: embedded).")] = None,
    daemon: Annotated[
        bool, typer.Option("--daemon", help="Run the idle learner (learns while the machine is idle).")
    ] = False,
    once: Annotated[bool, typer.Option("--once", help="With --daemon: one cycle, then exit.")] = False,
    min_new_fixes: Annotated[
        int | None,
        typer.Option(
            "--min-new-fixes", min=1, help="With --daemon: new fixes a route needs to be learned (default: setting)."
        ),
    ] = None,
    now: Annotated[bool, typer.Option("--now", help="With --daemon: do not wait for the machine to be idle.")] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu, cuda, mps or auto: train on a GPU box, serve the adapters anywhere."),
    ] = None,
) -> None:
    """Build training sets and train the Share adapters (Phase 0 -> 1 -> 2 -> 3); resumable."""
    from learner.learn.daemon import InstanceLock
    from learner.learn.phases import LearnOptions, run_learning

    settings = settings_from(model, device=device)
    if daemon:
        from learner.eval.gate_slice import benchmark_slice
        from learner.learn.daemon import DaemonConfig, run_daemon
        from learner.learn.gate import GateConfig

        config = DaemonConfig(
            min_new_examples=min_new_fixes or settings.learn_min_new_fixes,
            require_idle=not now,
            steps=steps,
            per_route=per_route,
            use_docs=not no_docs,
            gate=GateConfig(bench_scorer=benchmark_slice),
            learn={"crates": tuple(str(c) for c in crate)} if crate else {},
        )
        try:
            results = run_daemon(settings, config, once=once)
        except SleepyCoderError as exc:
            raise fail(str(exc)) from None
        for result in results:
            err_console.print(f"cycle {result.cycle_id}: {result.outcome}")
        return
    options = LearnOptions(
        routes=tuple(route) if route else None,
        only=tuple(only) if only else None,
        phase=phase,
        steps=steps,
        crates=tuple(str(c) for c in crate or ()),
        per_route=per_route,
        use_docs=not no_docs,
        naive=naive,
        rebuild=rebuild,
        promote=promote,
        batch_size=batch_size,
        max_tokens=max_tokens,
    )
    if share:
        from learner.share import ShareConfigError
        from learner.share.config import ShareConfig

        try:
            options.share = ShareConfig.parse_overrides(share)
        except ShareConfigError as exc:
            raise fail(str(exc)) from None
    if lora_lr is not None:
        options.lora_lr = lora_lr
    if coef_lr is not None:
        options.coef_lr = coef_lr
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[rate]:.2f} ex/s"),
        TimeRemainingColumn(),
    )
    progress = Progress(*columns, console=err_console) if sys.stderr.isatty() else None
    reporter = RichReporter(progress)
    try:
        if progress is not None:
            progress.start()
        try:
            # One learner per data home, by hand or as the daemon: two would train over each other.
            with InstanceLock(settings):
                report = run_learning(settings, options, reporter=reporter, resume=resume)
        finally:
            if progress is not None:
                progress.stop()
    except (SleepyCoderError, RuntimeError) as exc:
        raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    out = console
    out.print(
        f"run {report.run_dir.name}: {'finished' if report.finished else 'interrupted'}; phases {report.phases_done}"
    )
    for name, path in report.training_sets.items():
        out.print(f"  training set {name}: {path}")
    if report.version:
        status = "active" if report.promoted else "candidate"
        out.print(f"[green]produced[/] {report.version} ({status}) at {report.artifact}")
    if report.naive_version:
        out.print(f"[green]produced[/] {report.naive_version} (naive baseline) at {report.naive_artifact}")


def register(app: typer.Typer) -> None:
    app.command("learn")(learn)
