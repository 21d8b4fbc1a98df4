"""``conveyor trace``: the recorded runs, and one run's spans as a waterfall.

Reads the local run store (``.conveyor/runs``) that every ``conveyor run``
writes, whatever ``OTEL_TRACES_EXPORTER`` says.  The telemetry modules load
inside the commands, so that ``conveyor --help`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Show recorded runs and their spans (from .conveyor/runs).",
    no_args_is_help=True,
)

DEFAULT_DIR = Path(".conveyor") / "runs"

DirOption = Annotated[
    Path,
    typer.Option(
        "--dir",
        help="The run store: the directory holding one directory per run.",
        file_okay=False,
    ),
]


@app.command("show")
def show(
    run: Annotated[
        str | None,
        typer.Argument(help="A run id or the start of one (default: the newest run)."),
    ] = None,
    directory: DirOption = DEFAULT_DIR,
    width: Annotated[int, typer.Option("--width", min=10, help="Width of the bars.")] = 40,
) -> None:
    """Show one run's spans as a waterfall: name, status, duration and timeline."""
    from rich.console import Console

    from conveyor.telemetry.store import RunStore
    from conveyor.telemetry.waterfall import run_header, waterfall

    store = RunStore(directory)
    recorded = store.load(run) if run else store.latest()
    console = Console(highlight=False)
    console.print(run_header(recorded), soft_wrap=True)
    console.print(waterfall(recorded.spans, width=width), soft_wrap=True)


@app.command("list")
def list_runs(directory: DirOption = DEFAULT_DIR) -> None:
    """List the recorded runs, newest first."""
    from rich.console import Console

    from conveyor.telemetry.store import RunStore
    from conveyor.telemetry.waterfall import run_table

    runs = RunStore(directory).runs()
    if not runs:
        typer.echo(f"no runs recorded in {directory}")
        return
    Console(highlight=False).print(run_table(runs), soft_wrap=True)
