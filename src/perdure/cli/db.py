"""``perdure db``: the database itself."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from typing import Any

import click

from ..client.aio import App
from .project import safe_database
from .state import PerdureGroup, State, json_option, run

pass_state = click.make_pass_decorator(State)


@click.group(cls=PerdureGroup)
def db() -> None:
    """The database: create it and bring its schema up to date.

    \b
    Examples:
      perdure db migrate
      PERDURE_DATABASE=postgresql://app@db/app perdure db migrate
    """


def _apply(url: str) -> list[int] | None:
    """The versions applied, with the store's ``migrate(url)`` when it has one; else None."""
    module = importlib.import_module("perdure.store.migrate")
    backend = getattr(module, "migrate", None)
    if callable(backend):
        outcome: Any = backend(url)
        if inspect.isawaitable(outcome):

            async def wait() -> Any:
                return await outcome

            outcome = asyncio.run(wait())
        return list(outcome) if outcome is not None else None

    async def action(app: App) -> None:
        await app.store()  # opening applies the migrations

    run(App(database=url, register=False), action)
    return None


@db.command()
@json_option
@pass_state
def migrate(state: State, as_json: bool) -> None:
    """Create the database if needed and apply the schema migrations it lacks.

    Opening the database applies them as well, so this is for deploy pipelines that
    migrate before the new code starts.

    \b
    Examples:
      perdure db migrate
      perdure --database /var/lib/app/perdure.db db migrate --json
    """
    settings = state.settings(required=False)
    url = settings.database
    applied = _apply(url)
    printer = state.printer()
    shown = safe_database(url)
    if as_json:
        printer.json({"database": shown, "migrated": True, "applied": applied})
    elif applied:
        versions = ", ".join(str(v) for v in applied)
        printer.echo(f"Database {shown} is up to date; applied migration(s) {versions}.")
    else:
        printer.echo(f"Database {shown} is up to date.")
