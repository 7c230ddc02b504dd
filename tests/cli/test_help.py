"""Every command and sub-command documents itself (the sqlite-utils habit of a meta-test)."""

from __future__ import annotations

import click
import pytest
import typer
from typer.testing import CliRunner

from learner.cli.app import app


def _command_paths(group: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    if hasattr(group, "commands"):
        for name, command in group.commands.items():
            paths.extend(_command_paths(command, (*prefix, name)))
    return paths


ROOT = typer.main.get_command(app)
PATHS = [p for p in _command_paths(ROOT) if p]


def test_the_cli_has_the_commands_the_readme_names() -> None:
    names = {p[0] for p in PATHS}
    assert {"fix", "serve", "eval", "report", "learn", "adapters", "data", "status", "routes"} <= names


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) for p in PATHS])
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command: click.Command = ROOT
    for name in path:
        assert hasattr(command, "commands")
        command = command.commands[name]  # type: ignore[attr-defined]
    assert (command.help or command.short_help or "").strip(), f"{' '.join(path)} has no help text"
