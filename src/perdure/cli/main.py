"""The ``perdure`` command: the entry point and its global options."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import PerdureError
from . import db, instances, project, workflows
from .state import PerdureGroup, State, to_cli_error

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=PerdureGroup, context_settings=CONTEXT)
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PERDURE_CONFIG",
    help="The project's perdure.toml [default: the nearest one in this folder or a parent].",
)
@click.option(
    "--database",
    metavar="URL",
    help="SQLite file or postgresql:// URL; wins over PERDURE_DATABASE and perdure.toml.",
)
@click.version_option(__version__, "-V", "--version", prog_name="perdure")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, database: str | None) -> None:
    """Durable, multi-step workflows for Python, on SQLite or PostgreSQL.

    \b
    Start a project and run it locally:
      perdure init workflows-starter
      cd workflows-starter
      perdure dev
    \b
    Trigger an instance and read its step-by-step history:
      perdure workflows trigger workflows-starter '{"email": "ada@example.com"}'
      perdure workflows instances describe workflows-starter latest --watch
    \b
    In production:
      perdure deploy && perdure worker
    \b
    Every command takes --json and --help. Exit codes: 0 success, 1 the operation
    failed, 2 usage or configuration error. Shell completion: `perdure completion --help`.
    """
    ctx.obj = State(config=config, database=database)


cli.add_command(project.init)
cli.add_command(project.deploy)
cli.add_command(project.dev)
cli.add_command(project.serve)
cli.add_command(project.worker)
cli.add_command(workflows.workflows)
workflows.workflows.add_command(instances.instances)
cli.add_command(db.db)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    Examples:
      perdure completion bash >> ~/.bashrc
      perdure completion zsh > ~/.zfunc/_perdure
      perdure completion fish > ~/.config/fish/completions/perdure.fish
    """
    from click.shell_completion import get_completion_class

    completion_class = get_completion_class(shell)
    assert completion_class is not None
    click.echo(completion_class(cli, {}, "perdure", "_PERDURE_COMPLETE").source())


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; perdure errors that escape a command still exit without a traceback."""
    try:
        cli.main(args=argv, prog_name="perdure")
    except PerdureError as exc:  # pragma: no cover - commands convert their own errors
        error = to_cli_error(exc, as_json=False)
        error.show()
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
