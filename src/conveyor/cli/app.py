"""The ``conveyor`` command: its sub-commands and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

try:  # typer vendors click from 0.2x on; earlier releases use the click package
    from typer import _click as click
except ImportError:  # pragma: no cover - only with an older typer
    import click  # type: ignore[no-redef]

from conveyor.cli.closed_stdout import tolerate_closed_stdout
from conveyor.cli.commands import COMMANDS, ROOT_HELP, VERSION_HELP
from conveyor.cli.exit_codes import ExitCode
from conveyor.cli.outcome import ended
from conveyor.errors import ConveyorError

app = typer.Typer(
    name="conveyor",
    help=ROOT_HELP,
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
        typer.Option("--version", callback=_show_version, is_eager=True, help=VERSION_HELP),
    ] = False,
) -> None:
    """GitOps CI pipeline as code: test, build, scan, publish, manifest update, smoke test."""


# --- command registration: the table in conveyor.cli.commands --------------
# Each command's module is imported when the command runs (or its own --help
# is asked for), never for `conveyor --help` or another command.  The console
# script (conveyor.cli.entry) answers `conveyor --help` and `--version`
# before this module, and typer, are imported at all.
# ---------------------------------------------------------------------------


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
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, _Unloaded(name, help=entry.help))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Unloaded):
            command = self.commands[cmd_name] = load_command(cmd_name)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the same drawing as the console script's fast path: names and help lines only
        from conveyor.cli.listing import print_root_help

        print_root_help()


app.info.cls = LazyGroup


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """``(UsageError, ClickException)`` of the click that the installed typer uses.

    typer up to 0.1x re-exports the separate ``click`` package; later versions
    vendor it as ``typer._click``.  ``typer.BadParameter`` is a ``UsageError``
    of whichever it is, so its base classes name the right ones on both.
    """
    bases = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
    return bases["UsageError"], bases["ClickException"]


def usage_line(error: Exception) -> str:
    """A click usage error as one line: what is wrong and where to read the usage."""
    ctx = getattr(error, "ctx", None)
    command = ctx.command_path if ctx is not None else "conveyor"
    format_message = getattr(error, "format_message", None)
    message = format_message() if callable(format_message) else str(error)
    text = " ".join(str(message).replace("Value error, ", "").split()).rstrip(".")
    return f"error: {command}: {text} (see '{command} --help')"


def invoke(args: Sequence[str]) -> int:  # noqa: PLR0911 - one return per kind of outcome
    """Run ``conveyor ARGS``; return the exit code from the table.

    The command runs outside typer's own ``main``, which would turn Ctrl-C
    into a silent exit and usage errors into a multi-line box: every outcome
    is decided here, once.
    """
    usage_error, click_error = _click_errors()
    command = typer.main.get_command(app)
    try:
        with command.make_context("conveyor", list(args)) as ctx:
            result = command.invoke(ctx)
    except (ConveyorError, KeyboardInterrupt) as error:
        return ended(error)
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except usage_error as error:
        group = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError" and group is not None:
            # a bare group: its help is the answer.  Making the error drew it already
            # (click asks for the help text; typer's rich drawing prints it then and
            # leaves the text empty): print only what was not drawn, once.
            help_text = getattr(error, "message", "")
            if help_text:
                print(help_text)
        else:
            print(usage_line(error), file=sys.stderr)
        return ExitCode.USAGE
    except click_error as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.FAILED
    except OSError as error:
        return ended(error)
    return result if isinstance(result, int) else ExitCode.OK


def main() -> None:
    """Entry point of the console script: run the app, exit with the code from the table."""
    tolerate_closed_stdout()
    sys.exit(invoke(sys.argv[1:]))
