"""What every command shares: the global options, the App, and the one place errors become exits.

Exit codes: 0 success, 1 the operation failed (unknown workflow or instance, id taken, database
missing or locked, refused transition), 2 the input was wrong (bad option, JSON or config).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ..client.aio import App
from ..config import Settings, build_app, display_path, load_settings, sqlite_file
from ..errors import (
    ConfigError,
    DatabaseError,
    PayloadError,
    PerdureError,
    ValidationError,
)
from .output import Printer, colour_enabled

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass
class State:
    """Global options, filled in by the root group; ``as_json`` by each command."""

    config: Path | None = None
    database: str | None = None
    as_json: bool = False
    _settings: Settings | None = None

    def printer(self) -> Printer:
        return Printer(as_json=self.as_json)

    def settings(self, *, required: bool = True) -> Settings:
        """perdure.toml with the overrides; ``required=False`` lets --database stand alone."""
        if self._settings is None or (required and self._settings.path is None):
            self._settings = load_settings(self.config, database=self.database, required=required)
        return self._settings

    def reader(self) -> App:
        """An App for commands that read or steer instances: no user code, no registration.

        A workflow deleted with `perdure workflows delete` stays deleted until `perdure deploy`
        or a worker registers it again. A missing SQLite file is an error, not a new database.
        """
        settings = self.settings(required=False)
        require_database(settings)
        return build_app(settings, register=False, with_code=False)

    def project(self, *, register: bool) -> App:
        """An App with the project's workflows loaded from its code."""
        return build_app(self.settings(), register=register)


def require_database(settings: Settings) -> None:
    path = sqlite_file(settings.database)
    if path is not None and not path.exists():
        raise DatabaseError(
            f"database {display_path(path)} does not exist (from {settings.database_source}); "
            "run `perdure deploy` to create it and register the workflows, or point "
            "PERDURE_DATABASE / --database at an existing one"
        )


def run(app: App, action: Callable[[App], Awaitable[T]]) -> T:
    """Open ``app``, run ``action`` on it, close it, in a fresh event loop."""

    async def main() -> T:
        async with app:
            return await action(app)

    return asyncio.run(main())


# -- errors


class CliError(click.ClickException):
    """An operation that failed, printed as one line (or a JSON object with --json): exit 1."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, code: str = "error", as_json: bool) -> None:
        super().__init__(message)
        self.code = code
        self.as_json = as_json

    def show(self, file: Any = None) -> None:
        if self.as_json:
            body = {"error": {"code": self.code, "message": self.message}}
            click.echo(json.dumps(body, ensure_ascii=False), err=True)
            return
        colour = colour_enabled(sys.stderr)
        label = click.style("Error:", fg="red", bold=True) if colour else "Error:"
        click.echo(f"{label} {self.message}", err=True, color=colour)


class CliUsageError(CliError):
    """Input the user must fix: exit 2."""

    exit_code = EXIT_USAGE


def describe_error(exc: PerdureError) -> tuple[str, int]:
    """The message and exit code for a perdure error: the one mapping the CLI uses."""
    # Messages written for the Python API name methods; here the command is the way.
    message = (str(exc) or type(exc).__name__).replace("restart()", "restart")
    if isinstance(exc, DatabaseError):
        lowered = message.lower()
        if "locked" in lowered or "busy" in lowered:
            message = (
                f"the database is locked by another process ({message}); try again, or stop "
                "the process that holds a long write on it"
            )
        elif "not a database" in lowered:
            message = (
                f"{message}; the database setting points at a file that is not a perdure "
                "database (SQLite)"
            )
        return message, EXIT_FAILED
    if isinstance(exc, ConfigError | PayloadError | ValidationError):
        return message, EXIT_USAGE
    return message, EXIT_FAILED


def to_cli_error(exc: PerdureError, *, as_json: bool) -> CliError:
    message, exit_code = describe_error(exc)
    kind = CliUsageError if exit_code == EXIT_USAGE else CliError
    return kind(message, code=exc.code, as_json=as_json)


def usage(message: str, *, as_json: bool = False, code: str = "invalid") -> NoReturn:
    raise CliUsageError(message, code=code, as_json=as_json)


class PerdureCommand(click.Command):
    """A command whose perdure errors and Ctrl-C become clean exits, never tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        state = ctx.find_object(State)
        as_json = bool(ctx.params.get("as_json"))
        if state is not None:
            state.as_json = as_json
        try:
            return super().invoke(ctx)
        except PerdureError as exc:
            raise to_cli_error(exc, as_json=as_json) from None
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None


class PerdureGroup(click.Group):
    command_class = PerdureCommand
    group_class = type  # subgroups are PerdureGroups too


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (shapes documented in docs/cli.md)."
    )(fn)


def parse_json(text: str, *, what: str) -> Any:
    """Parse a JSON argument; ``@file`` reads a file and ``-`` reads stdin.

    A syntax error says where it is, as a usage error.
    """
    source = text
    if text == "-":
        source = sys.stdin.read()
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PayloadError(f"cannot read {what} from {path}: {exc.strerror}") from None
        what = f"{what} ({path})"
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; "
            'quote it for the shell, e.g. \'{"name": "Ada"}\''
        ) from None


def project_workflow_names() -> list[str]:
    """Workflow names in the nearest perdure.toml, for shell completion; never raises."""
    try:
        settings = load_settings(None, environ={}, required=True)
    except Exception:
        return []
    return [w.name for w in settings.workflows]


def complete_workflow(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    return [
        click.shell_completion.CompletionItem(name)
        for name in project_workflow_names()
        if name.startswith(incomplete)
    ]


__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "CliUsageError",
    "PerdureCommand",
    "PerdureGroup",
    "State",
    "complete_workflow",
    "describe_error",
    "json_option",
    "parse_json",
    "run",
    "to_cli_error",
    "usage",
]
