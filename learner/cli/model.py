"""``sleepy-coder prepare-model``, ``serve`` and ``version``: the model, the server and the toolchain."""

from __future__ import annotations

import sys

import typer

from learner import __version__
from learner.cli.app import ModelOption, console, fail, progress_printer, settings_from
from learner.errors import SleepyCoderError


def prepare_model(model: ModelOption = None) -> None:
    """Verify and convert the model once (the embedded GGUF becomes a bf16 copy in the cache)."""
    from learner.model.handle import ModelUnavailable, RuntimeHandle

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


def serve() -> None:
    """Run the language server over stdio (what the editor starts)."""
    from lsp_server.app import main as serve_main

    serve_main()


def version() -> None:
    """Print the version of sleepy-coder and of the Rust toolchain it uses."""
    from learner.rust.toolchain import rustc_version

    try:
        toolchain = rustc_version()
    except SleepyCoderError as exc:
        toolchain = f"unavailable ({exc})"
    console.print(f"sleepy-coder {__version__}; {toolchain}")


def register(app: typer.Typer) -> None:
    app.command("prepare-model")(prepare_model)
    app.command("serve")(serve)
    app.command("version")(version)
