"""The ``conveyor`` command: its sub-commands and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.main
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.errors import ConveyorError

app = typer.Typer(
    name="conveyor",
    help="GitOps CI pipeline as code: test, build, scan, publish, manifest update, smoke test.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        from conveyor import __version__

        typer.echo(f"conveyor {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """GitOps CI pipeline as code: test, build, scan, publish, manifest update, smoke test."""


# --- command registration: one line per command ---------------------------
# Each command's module is imported when the command runs (or its own --help
# is asked for), never for `conveyor --help` or another command: start-up then
# costs only typer.  The help line is kept here for that listing;
# tests/cli/test_app_lazy.py checks it against each command's own docstring.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (a function, or a ``typer.Typer`` of sub-commands)."""

    module: str
    attribute: str
    help: str


COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand(
        "conveyor.cli.run",
        "run",
        "Run the pipeline: test, build, scan, smoke, publish, manifest (and verify, policy).",
    ),
    "graph": LazyCommand(
        "conveyor.cli.graph",
        "graph",
        "Show the stage graph (a terminal tree, or Mermaid, dot, JSON).",
    ),
    "plan": LazyCommand(
        "conveyor.cli.graph",
        "plan",
        "Show what would run, with every reference resolved; nothing is built or pushed.",
    ),
    "doctor": LazyCommand(
        "conveyor.cli.doctor",
        "doctor",
        "Check tools, engines, configuration, registry and manifest repository.",
    ),
    "init": LazyCommand(
        "conveyor.cli.init",
        "init",
        "Generate conveyor.toml and the CI file that runs the pipeline.",
    ),
    "promote": LazyCommand(
        "conveyor.cli.promote",
        "promote",
        "Promote the image one environment runs to another.",
    ),
    "rollback": LazyCommand(
        "conveyor.cli.rollback",
        "rollback",
        "Roll an environment back to an image it ran before.",
    ),
    "trace": LazyCommand(
        "conveyor.cli.trace", "app", "Show recorded runs and their spans (from .conveyor/runs)."
    ),
    "manifest": LazyCommand(
        "conveyor.cli.manifest",
        "app",
        "Edit manifests: set an image locally or update an environment.",
    ),
    "policy": LazyCommand(
        "conveyor.cli.policy", "app", "Check manifests against the image policy."
    ),
}


def load_command(name: str) -> click.Command:
    """The click command of ``name``, built from its module (imported now)."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    holder = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class _Unloaded(TyperCommand):
    """Stands in for a command not imported yet: its name and help line, for listings."""


class LazyGroup(TyperGroup):
    """The root group: every command is known by name, imported only when it is used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, _Unloaded(name, help=entry.help))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Unloaded) and not self._listing:
            command = self.commands[cmd_name] = load_command(cmd_name)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True  # the listing needs names and help lines only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app.info.cls = LazyGroup


def main() -> None:
    """Entry point of the console script: run the app, map errors to exit codes."""
    try:
        code = app(standalone_mode=False)
    except ConveyorError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(exit_code_for(error))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    except SystemExit:
        raise
    except Exception as error:
        import click

        if isinstance(error, click.exceptions.UsageError):
            error.show()
            sys.exit(ExitCode.USAGE)
        if isinstance(error, click.exceptions.Abort):
            sys.exit(ExitCode.INTERRUPTED)
        raise
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
