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

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        metavar="DIR",
        help="The run store, holding one directory per run "
        "(default: the nearest .conveyor/runs at or above the current directory).",
        file_okay=False,
        show_default=False,
    ),
]


@app.command("show")
def show(
    run: Annotated[
        str | None,
        typer.Argument(help="A run id or the start of one (default: the newest run)."),
    ] = None,
    directory: DirOption = None,
    width: Annotated[
        int, typer.Option("--width", min=10, metavar="N", help="Width of the bars.")
    ] = 40,
) -> None:
    """Show one run's spans as a waterfall: name, status, duration and timeline."""
    from rich.console import Console

    from conveyor.telemetry.store import RunStore, find_root
    from conveyor.telemetry.waterfall import run_header, waterfall

    store = RunStore(directory or find_root(Path.cwd()))
    recorded = store.load(run) if run else store.latest()
    console = Console(highlight=False)
    console.print(run_header(recorded), soft_wrap=True)
    console.print(waterfall(recorded.spans, width=width), soft_wrap=True)


@app.command("list")
def list_runs(directory: DirOption = None) -> None:
    """List the recorded runs, newest first."""
    from rich.console import Console

    from conveyor.telemetry.store import RunStore, find_root
    from conveyor.telemetry.waterfall import run_table

    store = RunStore(directory or find_root(Path.cwd()))
    runs = store.runs()
    if not runs:
        typer.echo(f"no runs recorded in {store.root}")
        return
    Console(highlight=False).print(run_table(runs), soft_wrap=True)
