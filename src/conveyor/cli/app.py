"""The ``conveyor`` command: its sub-commands and the one place errors become exit codes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
import typer.main

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


# --- command registration: one line per command module -------------------
# (each module defines its commands on its own typer.Typer named ``app`` or a
#  function registered here; keep imports light: heavy libraries load lazily)
# ---------------------------------------------------------------------------
from conveyor.cli import graph, run  # noqa: E402

app.command("run")(run.run)
app.command("graph")(graph.graph)
app.command("plan")(graph.plan)

from conveyor.cli import doctor  # noqa: E402

app.command("doctor")(doctor.doctor)

from conveyor.cli import init  # noqa: E402

app.command("init")(init.init)

from conveyor.cli import trace  # noqa: E402

app.add_typer(trace.app, name="trace")

from conveyor.cli import promote, rollback  # noqa: E402

app.command("promote")(promote.promote)
app.command("rollback")(rollback.rollback)

from conveyor.cli import manifest, policy  # noqa: E402

app.add_typer(manifest.app, name="manifest")
app.add_typer(policy.app, name="policy")


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
    except ConveyorError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_code_for(error)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except usage_error as error:
        group = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError" and group is not None:
            help_text = group.get_help()  # a bare group: its help is the answer (rich prints it)
            if help_text:
                print(help_text)
        else:
            print(usage_line(error), file=sys.stderr)
        return ExitCode.USAGE
    except click_error as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.FAILED
    except OSError as error:  # a file the command could not read or write: its path and why
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return ExitCode.FAILED
    return result if isinstance(result, int) else ExitCode.OK


def main() -> None:
    """Entry point of the console script: run the app, exit with the code from the table."""
    sys.exit(invoke(sys.argv[1:]))
