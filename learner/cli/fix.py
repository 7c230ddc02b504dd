"""``sleepy-coder fix`` and ``sleepy-coder routes``: the fix pipeline and its routing table, printed."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress as RichProgress
from rich.syntax import Syntax

from learner.cli.app import (
    BackendOption,
    ModelOption,
    console,
    fail,
    plain,
    progress_printer,
    settings_from,
    without_controls,
)
from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.fix.sources import FixSource
from learner.progress import Progress as ProgressSink
from learner.records import DiagnosticFixes


def fix(
    path: Annotated[Path, typer.Argument(help="A crate directory, a file inside a crate, or a single .rs file.")],
    apply: Annotated[
        int | None,
        typer.Option("--apply", help="Write the N-th verified fix of each error (1 = best) into your files."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    no_model: Annotated[bool, typer.Option("--no-model", help="Only rustc's own suggestions.")] = False,
    all_sources: Annotated[
        bool, typer.Option("--all-sources", help="Ask the model even when rustc already has a verified fix.")
    ] = False,
    attempts: Annotated[int | None, typer.Option(help="Model attempts per error (with compiler feedback).")] = None,
    max_errors: Annotated[int, typer.Option(help="Fix at most this many errors.")] = 20,
    whole: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Fix the whole crate: apply the best verified fix, check again, and go on until it builds "
            "or nothing verifies (writes your files; rustc's suggestions for all errors are tried together first).",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show refused candidates.")] = False,
    model: ModelOption = None,
    backend: BackendOption = None,
) -> None:
    """Check a crate and print each error with its route and verified fixes as diffs."""
    from learner.fix.pipeline import apply_fix, build_sources, candidate_diff, fix_path
    from learner.model.handle import RuntimeHandle

    if apply is not None and apply < 1:
        raise fail(f"--apply counts from 1 (1 = the best fix), not {apply}")
    if whole and apply is not None:
        raise fail("--all applies the best fix of each round itself; leave out --apply")
    settings = settings_from(model, attempts=attempts, model_enabled=not no_model, backend=backend)
    settings.ensure_dirs()
    show_progress = not as_json and sys.stderr.isatty()
    report, bar = progress_printer(show_progress)
    runtime = RuntimeHandle(settings, report)
    sources = build_sources(settings, runtime=runtime)
    if whole:
        _fix_whole_crate(path, settings, sources, report, bar, as_json)
        return
    try:
        if bar is not None:
            bar.start()
        try:
            session, results = fix_path(
                path,
                settings,
                sources,
                max_errors=max_errors,
                stop_after_verified=not all_sources,
                progress=report,
            )
        finally:
            if bar is not None:
                bar.stop()
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None

    diffs = {id(v.candidate): candidate_diff(session, v.candidate) for r in results for v in r.fixes}
    if as_json:
        console.print_json(json.dumps(_results_json(results, diffs, verbose)))
    else:
        _print_results(results, diffs, verbose, session.crate.root)
    if apply is not None:
        # One fix per run: later fixes were computed against the old files, so check again for the rest.
        first = next((r for r in results if r.fixes), None)
        if first is None:
            raise fail("nothing to apply: no error has a verified fix")
        if apply > len(first.fixes):
            raise fail(f"no fix {apply}: the first error with fixes has {len(first.fixes)} verified fix(es)")
        chosen = first.fixes[apply - 1].candidate
        try:
            written = apply_fix(session, chosen)
        except SleepyCoderError as exc:
            raise fail(str(exc)) from None
        if not as_json:
            names = ", ".join(str(p.relative_to(session.crate.root)) for p in written)
            console.print(f"[green]applied[/] {plain(chosen.title)} -> {plain(names)}")


def _fix_whole_crate(
    path: Path,
    settings: Settings,
    sources: Sequence[FixSource],
    report: ProgressSink,
    bar: RichProgress | None,
    as_json: bool,
) -> None:
    """``fix --all``: the sequence of fixes written, then whether the crate builds (exit 1 if not)."""
    from learner.fix.whole_crate import fix_crate

    try:
        if bar is not None:
            bar.start()
        try:
            run = fix_crate(path, settings, sources, progress=report)
        finally:
            if bar is not None:
                bar.stop()
    except SleepyCoderError as exc:
        raise fail(str(exc)) from None
    if as_json:
        steps = [
            {
                "round": s.round,
                "title": s.title,
                "source": s.source,
                "errors_before": s.errors_before,
                "codes": list(s.codes),
                "files": list(s.files),
            }
            for s in run.steps
        ]
        remaining = [{"code": d.code, "message": d.message} for d in run.remaining]
        console.print_json(
            json.dumps({"steps": steps, "fixed": run.fixed, "reason": run.reason, "remaining": remaining})
        )
    else:
        for s in run.steps:
            console.print(
                f"[bold]{s.round}.[/] {plain(s.title)} [dim]({s.errors_before} error(s) before: "
                f"{plain(' '.join(s.codes))}; wrote {plain(', '.join(s.files))})[/]"
            )
        if run.fixed:
            console.print(f"[green]the crate builds[/] after {len(run.steps)} fix(es)")
        else:
            codes = " ".join(d.code or "-" for d in run.remaining)
            console.print(
                f"[yellow]stopped:[/] {plain(run.reason)}; {len(run.remaining)} error(s) left: {plain(codes)}"
            )
    if not run.fixed:
        raise typer.Exit(1)


def _results_json(results: list[DiagnosticFixes], diffs: dict[int, str], verbose: bool) -> dict[str, Any]:
    out = []
    for r in results:
        span = r.diagnostic.primary_span
        entry: dict[str, Any] = {
            "code": r.diagnostic.code,
            "message": r.diagnostic.message,
            "route": r.route.name,
            "file": span.file if span else None,
            "line": span.line_start if span else None,
            "column": span.column_start if span else None,
            "fixes": [
                {
                    "id": v.candidate.fix_id,
                    "source": v.candidate.source,
                    "title": v.candidate.title,
                    "preferred": v.candidate.preferred,
                    "attempt": v.candidate.attempt,
                    "latency_s": round(v.candidate.latency_s, 3),
                    "verdict": v.verdict.reason,
                    "diff": diffs[id(v.candidate)],
                }
                for v in r.fixes
            ],
            "notes": r.notes,
        }
        if verbose:
            entry["rejected"] = [
                {"source": v.candidate.source, "attempt": v.candidate.attempt, "reason": v.verdict.reason}
                for v in r.rejected
            ]
        out.append(entry)
    return {"errors": out}


def _print_results(results: list[DiagnosticFixes], diffs: dict[int, str], verbose: bool, root: Path) -> None:
    if not results:
        console.print(f"[green]no errors[/] in {root}")
        return
    for r in results:
        span = r.diagnostic.primary_span
        where = f"{span.file}:{span.line_start}:{span.column_start}" if span else "?"
        console.print(
            f"\n[bold red]error\\[{r.diagnostic.code or '-'}][/] {plain(r.diagnostic.message)}  "
            f"[dim]{plain(where)}  route: {r.route.name}[/]"
        )
        if not r.fixes:
            console.print("  [yellow]no verified fix[/]")
        for n, v in enumerate(r.fixes, start=1):
            star = " (preferred)" if v.candidate.preferred else ""
            console.print(f"  [bold]fix {n}[/] {plain(v.candidate.title)}{star} [dim]{v.candidate.latency_s:.2f}s[/]")
            console.print(Syntax(without_controls(diffs[id(v.candidate)]).rstrip("\n"), "diff", theme="ansi_dark"))
        for note in r.notes:
            console.print(f"  [dim]note: {plain(note)}[/]")
        if verbose:
            for v in r.rejected:
                console.print(
                    f"  [dim]refused {v.candidate.source} #{v.candidate.attempt}: {plain(v.verdict.reason)}[/]"
                )


def routes_cmd() -> None:
    """List the routes (error families) and the rustc error codes each one covers."""
    from learner.fix.router import ROUTES

    for route in ROUTES.values():
        console.print(f"[bold]{route.name}[/] {' '.join(route.codes) or '(any other code)'}")
        console.print(f"  [dim]{plain(route.hint)}[/]")


def register(app: typer.Typer) -> None:
    app.command("fix")(fix)
    app.command("routes")(routes_cmd)
