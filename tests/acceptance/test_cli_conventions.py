"""What users expect of any command: --help with examples, --version, completion, colour only on
a terminal (and never with NO_COLOR), and `perdure db migrate`."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from perdure import __version__
from perdure.cli.main import cli

from .cli_support import COMMAND, clean_env, new_project, perdure


def all_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, (*path, name)))
    return found


@pytest.mark.parametrize("path", all_commands(cli), ids=" ".join)
def test_every_command_has_help_with_examples(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])

    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "perdure " + " ".join(path) in result.output


def test_every_command_that_prints_data_takes_json() -> None:
    without = {
        ("completion",),
        ("dev",),
        ("serve",),
        ("worker",),
        ("workflows",),
        ("workflows", "instances"),
        ("db",),
    }
    for path in all_commands(cli):
        if path in without:
            continue
        help_text = CliRunner().invoke(cli, [*path, "--help"]).output
        assert "--json" in help_text, path


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])

    assert result.output.strip() == f"perdure, version {__version__}"


def test_shell_completion_scripts_and_workflow_names(tmp_path: Path) -> None:
    script = perdure("completion", "bash", cwd=tmp_path)
    project = new_project(tmp_path)
    done = subprocess.run(
        [*COMMAND],
        cwd=project,
        env=clean_env(
            _PERDURE_COMPLETE="bash_complete",
            COMP_WORDS="perdure workflows trigger work",
            COMP_CWORD="3",
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert script.code == 0 and "_PERDURE_COMPLETE=bash_complete" in script.out
    assert "plain,workflows-starter" in done.stdout


def in_a_terminal(*args: str, cwd: Path, **env: str) -> str:
    """Run ``perdure ARGS`` with its stdout on a pseudo-terminal and return what it printed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*COMMAND, *args],
        cwd=cwd,
        env=clean_env(**env),
        stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    process.wait(timeout=30)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_only_and_never_with_no_color(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    perdure("deploy", cwd=project)
    perdure("workflows", "trigger", WF := "workflows-starter", cwd=project)

    terminal = in_a_terminal("workflows", "instances", "list", WF, cwd=project)
    no_color = in_a_terminal("workflows", "instances", "list", WF, cwd=project, NO_COLOR="1")
    piped = perdure("workflows", "instances", "list", WF, cwd=project).out

    assert "\x1b[" in terminal and "queued" in terminal
    assert "\x1b[" not in no_color and "queued" in no_color
    assert "\x1b[" not in piped and "queued" in piped


def test_db_migrate_creates_the_database_and_is_idempotent(tmp_path: Path) -> None:
    first = perdure("db", "migrate", cwd=tmp_path, PERDURE_DATABASE="app.db")
    again = perdure("db", "migrate", "--json", cwd=tmp_path, PERDURE_DATABASE="app.db")
    listed = perdure("workflows", "list", "--json", cwd=tmp_path, PERDURE_DATABASE="app.db")

    assert first.code == 0 and "Database app.db is up to date; applied migration(s) 1" in first.out
    assert again.json["database"] == "app.db" and again.json["migrated"] is True
    assert again.json["applied"] == []  # nothing left to apply
    assert listed.json == {"workflows": []}
