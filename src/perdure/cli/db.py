"""``perdure db``: the database itself."""

from __future__ import annotations

import click

from ..client.aio import App
from ..store import migrate as sql_migrate
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
    backend_migrate = getattr(sql_migrate, "migrate", None)
    if callable(backend_migrate):
        backend_migrate(url)
    else:

        async def action(app: App) -> None:
            await app.store()

        run(App(database=url, register=False), action)
    printer = state.printer()
    if as_json:
        printer.json({"database": safe_database(url), "migrated": True})
    else:
        printer.echo(f"Database {safe_database(url)} is up to date.")
