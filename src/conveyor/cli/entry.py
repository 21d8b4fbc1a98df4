"""The console script ``conveyor``: answers ``--help``, ``--version`` and ``graph`` before typer.

Importing typer costs more than the whole start-up budget of ``conveyor
--help`` and half of ``conveyor graph``'s (bench/startup.py prints them
beside their floors), so these are answered here:

* ``conveyor --help``, a bare ``conveyor`` and ``--version``, from the
  command table (:mod:`conveyor.cli.commands`), drawn by the same code the
  typer app's root group uses;
* ``conveyor graph`` with its own options written plainly (``--config PATH``,
  ``-c PATH``, ``--format NAME``, ``-f NAME``, ``--name=value``), by the
  function the typer command calls, its errors ended the same way
  (:mod:`conveyor.cli.outcome`).

Anything else -- another command, ``graph --help``, an unknown option, a
value that is not a format -- goes to the typer app in :mod:`conveyor.cli.app`,
which answers or reports the usage error as always.  tests/cli/test_listing.py
and tests/cli/test_fast_graph.py hold both ways to the same output.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

# ExitCode.OK and ExitCode.USAGE (tests/cli/test_listing.py checks them against the
# table): importing conveyor.cli.exit_codes would load conveyor.errors for two numbers
OK, USAGE = 0, 2


GRAPH_OPTIONS = {"--config": "config", "-c": "config", "--format": "format", "-f": "format"}
"""The options of ``conveyor graph``, by spelling (tests check them against the typer command)."""


def graph_options(args: Sequence[str]) -> dict[str, str] | None:
    """``graph``'s options from ``args`` (after ``graph``); ``None`` if typer must parse them."""
    from conveyor.cli.stage_graph import GraphFormat

    found: dict[str, str] = {}
    rest = list(args)
    while rest:
        spelling, inline, value = rest.pop(0).partition("=")
        if spelling not in GRAPH_OPTIONS or (inline and not spelling.startswith("--")):
            return None
        if not inline:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        found[GRAPH_OPTIONS[spelling]] = value
    if found.get("format", GraphFormat.TREE.value) not in {f.value for f in GraphFormat}:
        return None
    return found


def draw_graph(options: dict[str, str]) -> int:
    """``conveyor graph`` with parsed options: print the graph, or end with the error's code."""
    from pathlib import Path

    from conveyor.cli.stage_graph import GraphFormat, draw
    from conveyor.errors import ConveyorError

    config = Path(options["config"]) if "config" in options else None
    try:
        draw(config, GraphFormat(options.get("format", GraphFormat.TREE.value)))
    except (ConveyorError, KeyboardInterrupt, OSError) as error:
        from conveyor.cli.outcome import ended  # the exit code table (and signal), on error only

        return ended(error)
    return OK


def answer(args: Sequence[str]) -> int | None:
    """The exit code when ``conveyor ARGS`` is answered here, else ``None`` (nothing printed)."""
    if args and args[0] == "graph":
        options = graph_options(args[1:])
        return None if options is None else draw_graph(options)
    if list(args) == ["--version"]:
        from conveyor import __version__

        print(f"conveyor {__version__}")
        return OK
    if list(args) in (["--help"], []):
        from conveyor.cli.listing import print_root_help

        print_root_help()
        if args:  # click's help option echoes what typer's drawing left: an empty line
            print()
            return OK
        return USAGE  # a bare group shows its help and exits as a usage error
    return None


def main() -> None:
    """Entry point of the console script: exit with the code from the table.

    What is answered here runs without the cyclic garbage collector: the
    process ends right after, and the collector's passes over the objects
    that importing pydantic creates cost ``conveyor graph`` about 3 % of its
    start-up (bench/startup.py).  A command typer runs collects as always.
    """
    from conveyor.cli.closed_stdout import tolerate_closed_stdout

    tolerate_closed_stdout()
    gc.disable()
    code = answer(sys.argv[1:])
    if code is None:
        gc.enable()
        from conveyor.cli.app import main as run_app

        run_app()
    sys.exit(code)
