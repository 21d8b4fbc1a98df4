"""How an error ends a command: one line on stderr and the exit code from the table.

Shared by the typer app (:func:`conveyor.cli.app.invoke`) and the console
script's fast paths (:mod:`conveyor.cli.entry`), which run a command
without typer: the same error ends both the same way.
"""

from __future__ import annotations

import sys

from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.errors import ConveyorError

Ending = ConveyorError | KeyboardInterrupt | OSError
"""What a command may raise that ends it with a code of the table (not a traceback)."""


def ended(error: Ending) -> int:
    """Print the line ``error`` ends the command with; return the exit code."""
    if isinstance(error, ConveyorError):
        print(f"error: {error}", file=sys.stderr)
        return exit_code_for(error)
    if isinstance(error, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    # a file the command could not read or write: its path and why
    where = f"{error.filename}: " if error.filename else ""
    print(f"error: {where}{error.strerror or error}", file=sys.stderr)
    return ExitCode.FAILED
