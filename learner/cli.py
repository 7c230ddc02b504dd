"""The ``sleepy-coder`` command line: a thin typer layer over the pipeline, store and learner.

Commands parse options, build :class:`~learner.config.Settings`, call the library and print.
Expected failures (no crate, no cargo, a model that will not load) print one clear line and
exit with status 2; they never show a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax

from learner import __version__
from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.records import DiagnosticFixes

app = typer.Typer(
    name="sleepy-coder",
    help="Verified fixes for Rust compile errors, from rustc's suggestions and a small local model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model: 'embedded:...' (default), a transformers id or a folder."),
]


def settings_from(model: str | None = None, **overrides: Any) -> Settings:
    """Settings for a CLI run: defaults, then the options the user gave."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if model:
        values["model"] = model
    return Settings.from_mapping(values)


def fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=2)


def progress_printer(enabled: bool) -> tuple[Callable[[str, float | None], None], Progress | None]:
    """A rich spinner for long steps (model preparation, generation); silent when not a terminal."""
    if not enabled:
        return (lambda message, fraction: None), None
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    task = bar.add_task("starting", total=None)

    def report(message: str, fraction: float | None) -> None:
        bar.update(task, description=message, total=1.0 if fraction is not None else None, completed=fraction or 0)

    return report, bar


@app.command()
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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show refused candidates.")] = False,
    model: ModelOption = None,
) -> None:
    """Check a crate and print each error with its route and verified fixes as diffs."""
    from learner.model_handle import RuntimeHandle
    from learner.pipeline import apply_fix, build_sources, candidate_diff, fix_path

    settings = settings_from(model, attempts=attempts, model_enabled=not no_model)
    settings.ensure_dirs()
    show_progress = not as_json and sys.stderr.isatty()
    report, bar = progress_printer(show_progress)
    runtime = RuntimeHandle(settings, report)
    sources = build_sources(settings, runtime=runtime)
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
        for result in results:
            if len(result.fixes) >= apply:
                chosen = result.fixes[apply - 1].candidate
                try:
                    written = apply_fix(session, chosen)
                except SleepyCoderError as exc:
                    raise fail(str(exc)) from None
                if not as_json:
                    names = ", ".join(str(p.relative_to(session.crate.root)) for p in written)
                    console.print(f"[green]applied[/] {chosen.title} -> {names}")
                # Later fixes were computed against the old file; check again for the rest.
                break


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
            f"\n[bold red]error\\[{r.diagnostic.code or '-'}][/] {escape(r.diagnostic.message)}  "
            f"[dim]{where}  route: {r.route.name}[/]"
        )
        if not r.fixes:
            console.print("  [yellow]no verified fix[/]")
        for n, v in enumerate(r.fixes, start=1):
            star = " (preferred)" if v.candidate.preferred else ""
            console.print(f"  [bold]fix {n}[/] {v.candidate.title}{star} [dim]{v.candidate.latency_s:.2f}s[/]")
            console.print(Syntax(diffs[id(v.candidate)].rstrip("\n"), "diff", theme="ansi_dark"))
        for note in r.notes:
            console.print(f"  [dim]note: {escape(note)}[/]")
        if verbose:
            for v in r.rejected:
                console.print(f"  [dim]refused {v.candidate.source} #{v.candidate.attempt}: {v.verdict.reason}[/]")


@app.command("routes")
def routes_cmd() -> None:
    """List the routes (error families) and the rustc error codes each one covers."""
    from learner.router import ROUTES

    for route in ROUTES.values():
        console.print(f"[bold]{route.name}[/] {' '.join(route.codes) or '(any other code)'}")
        console.print(f"  [dim]{route.hint}[/]")


@app.command("prepare-model")
def prepare_model(model: ModelOption = None) -> None:
    """Verify and convert the model once (the embedded GGUF becomes a bf16 copy in the cache)."""
    from learner.model_handle import ModelUnavailable, RuntimeHandle

    settings = settings_from(model)
    settings.ensure_dirs()
    report, bar = progress_printer(sys.stderr.isatty())
    handle = RuntimeHandle(settings, report)
    try:
        if bar is not None:
            bar.start()
        try:
            runtime = handle.get()
        finally:
            if bar is not None:
                bar.stop()
    except ModelUnavailable as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]ready[/] {runtime.model_name}")


@app.command()
def serve() -> None:
    """Run the language server over stdio (what the editor starts)."""
    from lsp_server.server import main as serve_main

    serve_main()


@app.command()
def version() -> None:
    """Print the version of sleepy-coder and of the Rust toolchain it uses."""
    from learner.toolchain import rustc_version

    try:
        toolchain = rustc_version()
    except SleepyCoderError as exc:
        toolchain = f"unavailable ({exc})"
    console.print(f"sleepy-coder {__version__}; {toolchain}")


def _register_subcommands() -> None:
    """Attach the command groups that live beside their features (eval, learn, adapters, data, ...)."""
    import importlib

    for module_name in ("learner.eval.cli", "learner.learn_cli", "learner.data_cli"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        module.register(app)


_register_subcommands()


def main() -> None:
    try:
        app()
    except SleepyCoderError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
