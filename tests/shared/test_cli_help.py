"""Every `ombudsdesk` command prints its help the way staff read it: no Python types, no braces (shared/cli_help.py)."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from ombudsdesk.cli import app

ODD = ("<str>", "<bool>", "<int>", "<float>", "<path>", "{")


def command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group below `group` (typer's groups have `commands`, whatever click they build on)."""
    paths = [prefix]
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            paths.extend(command_paths(command, (*prefix, name)))
        else:
            paths.append((*prefix, name))
    return paths


def test_every_command_help_is_free_of_python_types(monkeypatch, tmp_path):
    monkeypatch.setenv("OMBUDSDESK_VAR_DIR", str(tmp_path))
    root = typer.main.get_command(app)
    paths = command_paths(root)
    assert ("intake", "quarantine", "replay") in paths and ("notifier", "print-queue", "done") in paths
    assert ("deadletter", "show") in paths and ("register", "show") in paths and ("run",) in paths
    runner = CliRunner()
    several = runner.invoke(app, ["notifier", "print-queue", "done", "--help"], env={"COLUMNS": "200"}).output
    assert "done [OPTIONS] LETTER_IDS..." in several  # an argument taking several values says so
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        for odd in ODD:
            assert odd not in result.output, (path, odd, result.output)
