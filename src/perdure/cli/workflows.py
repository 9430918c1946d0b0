"""``perdure workflows``: list, describe, delete and trigger registered workflows."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..client.aio import App
from ..client.models import WorkflowInfo
from . import render
from .state import (
    PerdureGroup,
    State,
    complete_workflow,
    json_option,
    parse_json,
    run,
    usage,
)

pass_state = click.make_pass_decorator(State)


@click.group(cls=PerdureGroup)
def workflows() -> None:
    """Registered workflows and their instances.

    \b
    Examples:
      perdure workflows list
      perdure workflows trigger workflows-starter '{"email": "ada@example.com"}'
      perdure workflows instances describe workflows-starter latest
    """


@workflows.command("list")
@json_option
@pass_state
def list_(state: State, as_json: bool) -> None:
    """List registered workflows with their version and instance counts by status.

    \b
    Examples:
      perdure workflows list
      perdure workflows list --json | jq '.workflows[].name'
    """

    async def action(app: App) -> list[WorkflowInfo]:
        return await app.list_workflows()

    found = run(state.reader(), action)
    printer = state.printer()
    if as_json:
        printer.json({"workflows": [w.to_json() for w in found]})
    else:
        render.workflows_table(printer, found)


@workflows.command()
@click.argument("name", shell_complete=complete_workflow)
@json_option
@pass_state
def describe(state: State, name: str, as_json: bool) -> None:
    """Show one workflow: class, binding, version, times and instance counts by status.

    \b
    Examples:
      perdure workflows describe workflows-starter
      perdure workflows describe workflows-starter --json
    """

    async def action(app: App) -> WorkflowInfo:
        return await app.describe_workflow(name)

    info = run(state.reader(), action)
    printer = state.printer()
    if as_json:
        printer.json(info.to_json())
    else:
        render.workflow_view(printer, info)


@workflows.command()
@click.argument("name", shell_complete=complete_workflow)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_state
def delete(state: State, name: str, yes: bool, as_json: bool) -> None:
    """Delete a workflow and all its instances.

    Creating an instance fails afterwards until the workflow is registered again, by
    `perdure deploy` or a worker that starts. Asks first on a terminal, unless --yes.

    \b
    Examples:
      perdure workflows delete old-workflow
      perdure workflows delete old-workflow --yes --json
    """
    app = state.reader()

    async def count(app: App) -> int:
        return sum((await app.describe_workflow(name)).counts.values())

    if not yes and not as_json and sys.stdin.isatty():
        instances = run(app, count)
        click.confirm(
            f"Delete workflow {name!r} and its {instances} instance(s)?", abort=True, err=True
        )
        app = state.reader()

    async def action(app: App) -> None:
        await app.delete_workflow(name)

    run(app, action)
    printer = state.printer()
    if as_json:
        printer.json({"deleted": name})
    else:
        printer.echo(
            f"Deleted workflow {name}. Running instances stop at their next step; "
            "`perdure deploy` registers it again."
        )


@workflows.command()
@click.argument("name", shell_complete=complete_workflow)
@click.argument("params", required=False)
@click.option(
    "--payload",
    metavar="JSON",
    help="The params as JSON (instead of PARAMS); @FILE reads a file, - reads stdin.",
)
@click.option("--id", "instance_id", metavar="ID", help="The instance id [default: a random UUID].")
@json_option
@pass_state
def trigger(
    state: State,
    name: str,
    params: str | None,
    payload: str | None,
    instance_id: str | None,
    as_json: bool,
) -> None:
    """Create an instance of workflow NAME and print its id.

    PARAMS (or --payload) is JSON; it reaches `run` as `event.payload`.

    \b
    Examples:
      perdure workflows trigger workflows-starter
      perdure workflows trigger workflows-starter '{"email": "ada@example.com"}'
      perdure workflows trigger workflows-starter --payload @order.json --id order-42
      ID=$(perdure workflows trigger workflows-starter)
    """
    if params is not None and payload is not None:
        usage("give the params either as PARAMS or as --payload, not both", as_json=as_json)
    text = payload if payload is not None else params
    value: Any = None if text is None else parse_json(text, what="the payload")

    async def action(app: App) -> tuple[str, dict[str, Any]]:
        instance = await app.workflow(name).create(id=instance_id, params=value)
        return instance.id, (await instance.status()).to_json()

    created, status = run(state.reader(), action)
    printer = state.printer()
    if as_json:
        printer.json({"workflow": name, "id": created, **status})
        return
    printer.echo(created)
    printer.note(
        f"Queued instance {created} of {name}; follow it with "
        f"`perdure workflows instances describe {name} {created} --watch`"
    )
