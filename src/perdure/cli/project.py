"""Project commands: init, deploy, dev, serve and worker."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click

from ..client.aio import App
from ..client.models import WorkflowInfo
from ..config import (
    Settings,
    display_path,
    http_factory,
    import_main,
    sqlite_file,
)
from ..errors import ValidationError
from . import scaffold, servers
from .output import Printer
from .state import PerdureCommand, State, json_option, run, usage

pass_state = click.make_pass_decorator(State)


def safe_database(url: str) -> str:
    """The database for display: a path relative to here, or a URL without its password."""
    path = sqlite_file(url)
    if path is not None:
        return display_path(path)
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


# -- init


def _list_templates(printer: Printer) -> None:
    found = scaffold.templates()
    if printer.as_json:
        printer.json(
            {
                "templates": [
                    {
                        "name": t.name,
                        "description": t.description,
                        "default": t.name == scaffold.DEFAULT_TEMPLATE,
                    }
                    for name, t in found.items()
                ]
            }
        )
        return
    printer.table(
        ["TEMPLATE", "DESCRIPTION"],
        [
            [name + (" (default)" if name == scaffold.DEFAULT_TEMPLATE else ""), t.description]
            for name, t in found.items()
        ],
    )


@click.command(cls=PerdureCommand)
@click.argument("name", required=False)
@click.option(
    "-t",
    "--template",
    default=scaffold.DEFAULT_TEMPLATE,
    show_default=True,
    help="The starter to copy; `--template list` lists them.",
)
@click.option("--list-templates", is_flag=True, help="List the templates and exit.")
@json_option
@pass_state
def init(
    state: State, name: str | None, template: str, list_templates: bool, as_json: bool
) -> None:
    """Create a starter project in a new folder NAME.

    The project holds a workflow module, an HTTP handler that starts instances, a
    perdure.toml, a README and its own tests.

    \b
    Examples:
      perdure init workflows-starter
      perdure init approvals --template approval
      perdure init --list-templates
    """
    printer = state.printer()
    if list_templates or template == "list":
        _list_templates(printer)
        return
    if not name:
        usage("missing the project NAME, e.g. `perdure init workflows-starter`", as_json=as_json)
    plan = scaffold.plan(name, template)
    try:
        files = scaffold.render(plan)
    except FileExistsError as exc:
        raise ValidationError(str(exc)) from None
    relative = [str(path.relative_to(plan.folder)) for path in files]
    if as_json:
        printer.json(
            {
                "path": str(plan.folder.resolve()),
                "template": plan.template.name,
                "project": plan.project,
                "package": plan.package,
                "workflows": [plan.workflow],
                "files": relative,
            }
        )
        return
    printer.echo(
        f"Created {printer.bold(display_path(plan.folder))} from template {plan.template.name}:"
    )
    for file in relative:
        printer.echo(f"  {file}")
    printer.echo()
    printer.echo("Next:")
    printer.echo(f"  cd {display_path(plan.folder)}")
    printer.echo("  perdure dev                 # a worker and the HTTP handler, with reload")
    printer.echo(f"  perdure workflows trigger {plan.workflow}")
    printer.echo(f"  perdure workflows instances describe {plan.workflow} latest --watch")
    printer.echo("  pytest                      # the project's own tests")


# -- deploy


@click.command(cls=PerdureCommand)
@json_option
@pass_state
def deploy(state: State, as_json: bool) -> None:
    """Register the workflows of perdure.toml in the database, with their code version.

    The version is a hash of the workflow's module: instances created from now on record
    and run it. A worker registers its workflows on start as well. Creates the SQLite
    database if it does not exist yet.

    \b
    Examples:
      perdure deploy
      PERDURE_DATABASE=postgresql://app@db/app perdure deploy --json
    """
    settings = state.settings()
    app = state.project(register=False)

    async def action(app: App) -> tuple[list[WorkflowInfo], dict[str, str], list[str]]:
        before = {w.name: w.version for w in await app.list_workflows()}
        deployed = await app.deploy()
        others = sorted(set(before) - {w.name for w in deployed})
        return deployed, before, others

    deployed, before, others = run(app, action)

    def change(info: WorkflowInfo) -> str:
        old = before.get(info.name)
        if old is None:
            return "new"
        return "unchanged" if old == info.version else f"updated from {old}"

    printer = state.printer()
    if as_json:
        printer.json(
            {
                "database": safe_database(settings.database),
                "workflows": [{**w.to_json(), "change": change(w)} for w in deployed],
                "not_in_config": others,
            }
        )
        return
    printer.echo(
        f"Deployed {len(deployed)} workflow{'s' * (len(deployed) != 1)} to "
        f"{safe_database(settings.database)}:"
    )
    printer.table(
        ["NAME", "CLASS", "BINDING", "VERSION", "CHANGE"],
        [[w.name, w.class_path, w.binding, w.version, change(w)] for w in deployed],
    )
    for name in others:
        printer.note(
            f"note: workflow {name!r} is registered but not in {settings.file}; "
            f"`perdure workflows delete {name}` removes it and its instances"
        )


# -- dev, serve, worker


def _worker_options(concurrency: int, poll_interval: float) -> dict[str, Any]:
    if concurrency < 1:
        raise ValidationError("--concurrency must be at least 1")
    if poll_interval <= 0:
        raise ValidationError("--poll-interval must be greater than zero")
    return {"concurrency": concurrency, "poll_interval": poll_interval}


def _banner(printer: Printer, settings: Settings, app: App, lines: list[tuple[str, str]]) -> None:
    specs = app.registry.specs()
    workflows = ", ".join(f"{s.name} (env.{s.binding})" for s in specs) or "none"
    rows = [("database", safe_database(settings.database)), ("workflows", workflows), *lines]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        printer.note(f"  {label.ljust(width)}  {value}")


def _prefix(value: str) -> str:
    value = "/" + value.strip("/") if value.strip("/") else ""
    return value


@click.command(cls=PerdureCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="PERDURE_TOKEN",
    help="Bearer token for the API and dashboard; needed off loopback. [env: PERDURE_TOKEN]",
)
@click.option(
    "--prefix",
    help="Path of the API and dashboard [default: /perdure when the project has an HTTP "
    "handler, else /].",
)
@click.option("--reload/--no-reload", default=True, show_default=True, help="Restart on change.")
@click.option("--concurrency", default=100, show_default=True, help="Instances run at once.")
@click.option("--poll-interval", default=0.25, show_default=True, help="Seconds between polls.")
@pass_state
def dev(
    state: State,
    host: str,
    port: int,
    token: str | None,
    prefix: str | None,
    reload: bool,
    concurrency: int,
    poll_interval: float,
) -> None:
    """Run the project locally: a worker and the HTTP server in one process.

    The server answers with the project's HTTP handler (the `http` function named in
    perdure.toml) and serves the HTTP API and dashboard beside it, under /perdure when
    the project has a handler. With --reload (the default) it restarts when a file of
    the project changes. The workflows are registered on start, as `perdure deploy` does.

    \b
    Examples:
      perdure dev
      perdure dev --port 9000 --no-reload
      curl http://127.0.0.1:8787/
      open http://127.0.0.1:8787/perdure/
    """
    from ..http import check_bind, serve_async

    settings = state.settings()
    options = _worker_options(concurrency, poll_interval)
    check_bind(host, token)
    printer = state.printer()
    inherited = servers.inherited_socket()
    if reload and inherited is None:
        sock = servers.bind(host, port)
        bound = sock.getsockname()[1]
        printer.note(f"perdure dev: {settings.file} on {servers.url(host, bound)}")
        args = ["--config", str(settings.path)]
        if state.database:
            args += ["--database", state.database]
        args += ["dev", "--no-reload", "--host", host, "--port", str(bound)]
        args += ["--concurrency", str(concurrency), "--poll-interval", str(poll_interval)]
        if prefix is not None:
            args += ["--prefix", prefix]
        ignore: set[Path] = set()
        database = sqlite_file(settings.database)
        if database is not None:
            ignore = {database.resolve().with_name(database.name + s) for s in ("", "-wal", "-shm")}
        code = servers.supervise(
            servers.child_command(args),
            root=settings.root,
            sock=sock,
            printer=printer,
            ignore=ignore,
            env={"PERDURE_TOKEN": token} if token else {},
        )
        raise SystemExit(code)

    sock = inherited or servers.bind(host, port)
    app = state.project(register=True)
    factory = http_factory(settings, import_main(settings))
    path = _prefix(prefix if prefix is not None else ("/perdure" if factory else ""))
    servers.setup_logging()

    async def main() -> None:
        stop = asyncio.Event()
        # Installed before uvicorn's: it hands the signal back to us once it has stopped.
        servers.stop_on_signals(stop)
        started = asyncio.Event()
        async with app:
            user_app = factory(app.env) if factory is not None else None
            address = servers.url(host, sock.getsockname()[1])

            async def announce() -> None:
                await started.wait()
                printer.note(f"ready on {address}")
                _banner(
                    printer,
                    settings,
                    app,
                    [
                        ("handler", f"{address}/ ({settings.http})" if factory else "none"),
                        ("dashboard", f"{address}{path}/"),
                        ("api", f"{address}{path}/api"),
                    ],
                )

            announcer = asyncio.create_task(announce())
            try:
                await serve_async(
                    app,
                    host=host,
                    token=token,
                    prefix=path,
                    user_app=user_app,
                    worker=True,
                    worker_options=options,
                    sock=sock,
                    log_level="warning",
                    started=started,
                    stop=stop,
                )
            finally:
                announcer.cancel()

    asyncio.run(main())


@click.command(cls=PerdureCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="PERDURE_TOKEN",
    help="Bearer token the API and dashboard require; needed off loopback. [env: PERDURE_TOKEN]",
)
@click.option("--prefix", default="", help="Serve under this path, e.g. /perdure.")
@pass_state
def serve(state: State, host: str, port: int, token: str | None, prefix: str) -> None:
    """Serve the HTTP API and the dashboard (no worker, no project code).

    Listens on 127.0.0.1 by default. Any other address needs a token, or the command
    refuses to start.

    \b
    Examples:
      perdure serve
      PERDURE_TOKEN=s3cret perdure serve --host 0.0.0.0 --port 8080
    """
    from ..http import check_bind, serve_async

    check_bind(host, token)
    app = state.reader()
    sock = servers.bind(host, port)
    printer = state.printer()
    servers.setup_logging()

    async def main() -> None:
        stop = asyncio.Event()
        servers.stop_on_signals(stop)
        started = asyncio.Event()
        address = servers.url(host, sock.getsockname()[1])

        async def announce() -> None:
            await started.wait()
            printer.note(
                f"serving the API and dashboard of {safe_database(app.database)} on "
                f"{address}{_prefix(prefix)}/"
            )

        announcer = asyncio.create_task(announce())
        try:
            async with app:
                await serve_async(
                    app,
                    host=host,
                    token=token,
                    prefix=_prefix(prefix),
                    sock=sock,
                    log_level="warning",
                    started=started,
                    stop=stop,
                )
        finally:
            announcer.cancel()

    asyncio.run(main())


@click.command(cls=PerdureCommand)
@click.option("--concurrency", default=1000, show_default=True, help="Instances run at once.")
@click.option(
    "--lease-seconds", default=10.0, show_default=True, help="Lease of a claimed instance."
)
@click.option("--poll-interval", default=0.25, show_default=True, help="Seconds between polls.")
@pass_state
def worker(state: State, concurrency: int, lease_seconds: float, poll_interval: float) -> None:
    """Run a worker: it runs the instances of the project's workflows until stopped.

    Run as many as you like on one database; each claims instances with a lease, so an
    instance runs in one worker at a time, and a crashed worker's instances move on once
    its lease ends. The workflows are registered on start. SIGTERM or Ctrl-C stops it
    gracefully.

    \b
    Examples:
      perdure worker
      perdure worker --concurrency 200
    """
    settings = state.settings()
    options = _worker_options(concurrency, poll_interval)
    if lease_seconds <= 0:
        raise ValidationError("--lease-seconds must be greater than zero")
    app = state.project(register=True)
    printer = state.printer()
    servers.setup_logging()

    async def main() -> None:
        stop = asyncio.Event()
        servers.stop_on_signals(stop)
        async with app, app.worker(lease_seconds=lease_seconds, **options):
            printer.note(f"perdure worker {os.getpid()} started")
            _banner(printer, settings, app, [])
            await stop.wait()
            printer.note("stopping: waiting for running steps to finish")
        printer.note("stopped")

    asyncio.run(main())


__all__ = ["deploy", "dev", "init", "safe_database", "serve", "worker"]
