"""The console script ``conveyor``: answers ``--help`` and ``--version`` before typer loads.

Importing typer costs more than the whole start-up budget of ``conveyor
--help`` (bench/startup.py prints both), so the bare root help, the version
and a bare ``conveyor`` are answered here from the command table
(:mod:`conveyor.cli.commands`); everything else goes to the typer app in
:mod:`conveyor.cli.app`, which draws the same root help with the same code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# ExitCode.OK and ExitCode.USAGE (tests/cli/test_listing.py checks them against the
# table): importing conveyor.cli.exit_codes would load conveyor.errors for two numbers
OK, USAGE = 0, 2


def answer(args: Sequence[str]) -> int | None:
    """The exit code when ``conveyor ARGS`` is answered here, else ``None`` (nothing printed)."""
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
    """Entry point of the console script: exit with the code from the table."""
    code = answer(sys.argv[1:])
    if code is None:
        from conveyor.cli.app import main as run_app

        run_app()
    sys.exit(code)
