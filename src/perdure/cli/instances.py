"""``perdure workflows instances``: list, describe and steer instances. ``latest`` works as an id."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from ..client.aio import App
from ..client.models import InstanceDetails, InstanceStatus, InstanceSummary
from ..states import TERMINAL, Status
from . import render
from .output import Printer
from .state import (
    EXIT_FAILED,
    PerdureGroup,
    State,
    complete_workflow,
    json_option,
    parse_json,
    run,
    usage,
)

pass_state = click.make_pass_decorator(State)
STATUSES = [s.value for s in Status if s != Status.UNKNOWN]
ID_HELP = "ID is an instance id, or `latest` for the most recently created one."


@click.group(cls=PerdureGroup)
def instances() -> None:
    """The instances of a workflow: list, describe, pause, resume, terminate, restart,
    send an event. ID may be `latest`.

    \b
    Examples:
      perdure workflows instances list workflows-starter --status errored
      perdure workflows instances describe workflows-starter latest
      perdure workflows instances restart workflows-starter latest --from-step "some other step"
    """


def name_argument(fn: Any) -> Any:
    return click.argument("name", shell_complete=complete_workflow)(fn)


@instances.command("list")
@name_argument
@click.option("--status", type=click.Choice(STATUSES), help="Only instances in this status.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Page size."
)
@click.option("--cursor", help="The cursor printed with the previous page.")
@json_option
@pass_state
def list_(
    state: State, name: str, status: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List the instances of workflow NAME, newest first, a page at a time.

    \b
    Examples:
      perdure workflows instances list workflows-starter
      perdure workflows instances list workflows-starter --status errored --limit 10
      perdure workflows instances list workflows-starter --cursor 1732551835.1:42
    """

    async def action(app: App) -> tuple[list[InstanceSummary], str | None]:
        return await app.workflow(name).list(status=status, limit=limit, cursor=cursor)

    rows, next_cursor = run(state.reader(), action)
    printer = state.printer()
    if as_json:
        printer.json({"instances": [r.to_json() for r in rows], "next_cursor": next_cursor})
        return
    if not rows:
        which = f" {status}" if status else ""
        printer.echo(f"No{which} instances of {name}.")
        return
    render.instances_table(printer, rows)
    if next_cursor:
        printer.note(
            f"More: perdure workflows instances list {name} --cursor {next_cursor}"
            + (f" --status {status}" if status else "")
        )


@instances.command()
@name_argument
@click.argument("instance_id", metavar="[ID]", default="latest")
@click.option("--full", is_flag=True, help="Show whole states, payloads and tracebacks.")
@click.option("-w", "--watch", is_flag=True, help="Refresh until the instance ends.")
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.05),
    help="--watch period.",
)
@json_option
@pass_state
def describe(
    state: State,
    name: str,
    instance_id: str,
    full: bool,
    watch: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Show an instance: status, version, times, output, error, and its steps.

    Each step shows its kind (do, sleep, wait), status, attempts (with each retry's
    error), start, duration, the state it returned (shortened; --full shows all) and,
    for a sleep or a wait, when it wakes up. ID defaults to `latest`.

    With --watch the view stays live until the instance ends; the exit code is then 0
    if it completed, 1 if it errored or was terminated.

    \b
    Examples:
      perdure workflows instances describe workflows-starter
      perdure workflows instances describe workflows-starter 3f9a2c1e --full
      perdure workflows instances describe workflows-starter latest --watch
      perdure workflows instances describe workflows-starter latest --json | jq .steps
    """
    printer = state.printer()
    app = state.reader()

    async def once(app: App) -> InstanceDetails:
        instance = await app.workflow(name).get(instance_id)
        return await instance.describe()

    if not watch:
        details = run(app, once)
        if as_json:
            printer.json(details.to_json())
        else:
            render.instance_view(printer, details, full=full)
        return

    details = run(app, lambda app: _watch(app, name, instance_id, printer, interval, full))
    if as_json:
        printer.json(details.to_json())
    elif not printer.colour:
        render.instance_view(printer, details, full=full)
    if details.status != Status.COMPLETE:
        raise SystemExit(EXIT_FAILED)


async def _watch(
    app: App, name: str, instance_id: str, printer: Printer, interval: float, full: bool
) -> InstanceDetails:
    """Redraw on a terminal; elsewhere print one progress line per change, on stderr."""
    instance = await app.workflow(name).get(instance_id)
    tick = 0
    last = ""
    while True:
        details = await instance.describe()
        done = details.status in TERMINAL
        if printer.colour and not printer.as_json:
            click.clear()
            printer.echo(render.progress_line(printer, details, tick))
            printer.echo()
            render.instance_view(printer, details, full=full)
        else:
            line = render.progress_line(Printer(colour=False), details, 0)
            summary = line.rsplit("  ", 1)[0]  # without the duration, which always changes
            if summary != last:
                click.echo(line, err=True)
                last = summary
        if done:
            return details
        tick += 1
        await asyncio.sleep(interval)


# -- steering


def _report(
    state: State, name: str, action: str, instance_id: str, status: InstanceStatus, as_json: bool
) -> None:
    printer = state.printer()
    if as_json:
        printer.json({"workflow": name, "id": instance_id, **status.to_json()})
        return
    done = {
        "pause": "Paused",
        "resume": "Resumed",
        "terminate": "Terminated",
        "restart": "Restarted",
    }[action]
    printer.echo(
        f"{done} instance {instance_id} of {name}; status: {printer.status(status.status)}"
    )


def _steer(
    state: State, name: str, instance_id: str, action: str, as_json: bool, **kw: Any
) -> None:
    async def act(app: App) -> tuple[str, InstanceStatus]:
        instance = await app.workflow(name).get(instance_id)
        method = getattr(instance, action)
        status: InstanceStatus = await method(**kw)
        return instance.id, status

    resolved, status = run(state.reader(), act)
    _report(state, name, action, resolved, status, as_json)


@instances.command()
@name_argument
@click.argument("instance_id", metavar="ID")
@json_option
@pass_state
def pause(state: State, name: str, instance_id: str, as_json: bool) -> None:
    """Pause an instance: a running step finishes first (waitingForPause), sleeps stop.

    \b
    Examples:
      perdure workflows instances pause workflows-starter latest
    """
    _steer(state, name, instance_id, "pause", as_json)


@instances.command()
@name_argument
@click.argument("instance_id", metavar="ID")
@json_option
@pass_state
def resume(state: State, name: str, instance_id: str, as_json: bool) -> None:
    """Resume a paused instance; a sleep keeps only the time it had left.

    \b
    Examples:
      perdure workflows instances resume workflows-starter latest
    """
    _steer(state, name, instance_id, "resume", as_json)


@instances.command()
@name_argument
@click.argument("instance_id", metavar="ID")
@json_option
@pass_state
def terminate(state: State, name: str, instance_id: str, as_json: bool) -> None:
    """Stop an instance for good. Refused once it has ended.

    \b
    Examples:
      perdure workflows instances terminate workflows-starter 3f9a2c1e
    """
    _steer(state, name, instance_id, "terminate", as_json)


@instances.command()
@name_argument
@click.argument("instance_id", metavar="ID")
@click.option("--from-step", metavar="STEP", help="Run again from this step; keep earlier results.")
@click.option(
    "--count",
    type=click.IntRange(1),
    help="Which use of the step name, when it runs more than once [default: 1].",
)
@click.option(
    "--type",
    "kind",
    type=click.Choice(["do", "sleep", "wait"]),
    help="The kind of the step [default: do].",
)
@json_option
@pass_state
def restart(
    state: State,
    name: str,
    instance_id: str,
    from_step: str | None,
    count: int | None,
    kind: str | None,
    as_json: bool,
) -> None:
    """Run an instance again with the same id and params.

    Without --from-step its whole history is erased. With it, that step and every step
    started after it run again; results of earlier steps are kept.

    \b
    Examples:
      perdure workflows instances restart workflows-starter latest
      perdure workflows instances restart workflows-starter latest --from-step "some other step"
      perdure workflows instances restart my-flow 3f9a2c1e --from-step nap --type sleep --count 2
    """
    if from_step is None:
        if count is not None or kind is not None:
            usage("--count and --type need --from-step", as_json=as_json)
        _steer(state, name, instance_id, "restart", as_json)
        return
    _steer(
        state,
        name,
        instance_id,
        "restart",
        as_json,
        from_step=from_step,
        count=count or 1,
        kind=kind or "do",
    )


@instances.command("send-event")
@name_argument
@click.argument("instance_id", metavar="ID")
@click.option("--type", "event_type", required=True, help="The event type a wait expects.")
@click.option(
    "--payload",
    metavar="JSON",
    default="{}",
    show_default=True,
    help="The event's payload; @FILE reads a file, - reads stdin.",
)
@json_option
@pass_state
def send_event(
    state: State, name: str, instance_id: str, event_type: str, payload: str, as_json: bool
) -> None:
    """Send an event to an instance; it is kept until a wait for its type takes it.

    \b
    Examples:
      perdure workflows instances send-event approvals latest --type approval
      perdure workflows instances send-event approvals 3f9a2c1e --type approval \\
          --payload '{"approved": true}'
    """
    value = parse_json(payload, what="the event payload")

    async def act(app: App) -> str:
        instance = await app.workflow(name).get(instance_id)
        await instance.send_event(event_type, value)
        return instance.id

    resolved = run(state.reader(), act)
    printer = state.printer()
    if as_json:
        printer.json({"workflow": name, "id": resolved, "type": event_type, "sent": True})
    else:
        printer.echo(f"Sent event {event_type!r} to instance {resolved} of {name}")


__all__ = ["instances"]
