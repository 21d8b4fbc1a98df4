"""The ``conveyor`` command: its sub-commands and the one place errors become exit codes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

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

from conveyor.cli import report  # noqa: E402

app.add_typer(report.app, name="report")


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
