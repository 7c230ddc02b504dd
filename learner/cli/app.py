"""The ``sleepy-coder`` typer application and what every command group shares.

Commands parse options, build :class:`~learner.config.Settings`, call the library and print.
Expected failures (no crate, no cargo, a model that will not load) print one clear line and
exit with status 2; they never show a traceback.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from learner.config import Settings
from learner.progress import Progress as ProgressSink

app = typer.Typer(
    name="sleepy-coder",
    help="Verified fixes for Rust compile errors, from rustc's suggestions and a small local model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Model: 'embedded:...' (default), a transformers id or a folder."),
]

BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Where fixes are generated: 'local' (default) or 'openai:http://HOST:PORT/v1' (an OpenAI-compatible "
        "server such as vLLM; the code around each error is sent there).",
    ),
]


def settings_from(model: str | None = None, **overrides: Any) -> Settings:
    """Settings for a CLI run: the ones a parent process handed down (else the defaults), then the options given."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if model:
        values["model"] = model
    return Settings.from_mapping(values, base=Settings.inherited())


def ready_settings(model: str | None = None, **overrides: Any) -> Settings:
    """:func:`settings_from`, with the data, cache and log folders created (what a command that writes needs)."""
    settings = settings_from(model, **overrides)
    settings.ensure_dirs()
    return settings


#: Escape sequences and control characters (tab and newline aside) that compiler text may carry.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def without_controls(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (what rich renders raw)."""
    return _CONTROL.sub("", text)


def plain(text: str) -> str:
    """Compiler or model text made safe to print as rich markup: no terminal escapes, no markup."""
    return escape(without_controls(text))


def fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {plain(message)}")
    return typer.Exit(code=2)


def progress_printer(enabled: bool) -> tuple[ProgressSink, Progress | None]:
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
