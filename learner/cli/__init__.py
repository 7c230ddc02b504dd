"""The ``sleepy-coder`` command line: one module per command group, each registered here explicitly.

A group that fails to import fails the whole command line loudly (no optional discovery):
every group's own imports are deferred into its commands, so ``sleepy-coder --help`` stays fast
and never imports torch.
"""

from __future__ import annotations

from rich.markup import escape

from learner.cli import data, eval, fix, learn, model
from learner.cli.app import app, err_console
from learner.errors import SleepyCoderError

for _group in (fix, model, eval, learn, data):
    _group.register(app)


def main() -> None:
    try:
        app()
    except SleepyCoderError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise SystemExit(2) from None


__all__ = ["app", "main"]
