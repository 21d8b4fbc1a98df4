"""``conveyor --help`` from the console script's fast path: typer's drawing, without typer.

The fast path (conveyor.cli.entry) and the typer app's root group both draw
with conveyor.cli.listing; these tests hold that drawing to what typer itself
draws for a group with the same options and commands, at several widths,
with and without colour, through real processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor import __version__
from conveyor.cli import entry
from conveyor.cli.commands import COMMANDS
from conveyor.cli.exit_codes import ExitCode

CONVEYOR = Path(sys.executable).parent / "conveyor"

TYPERS_OWN = """
from typing import Annotated

import typer

from conveyor.cli.commands import COMMANDS, ROOT_HELP, VERSION_HELP

app = typer.Typer(name="conveyor", help=ROOT_HELP, add_completion=False)


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", help=VERSION_HELP)] = False) -> None:
    pass


for name, command in COMMANDS.items():
    app.command(name, help=command.help)(lambda: None)
app(["--help"], prog_name="conveyor")
"""

THROUGH_TYPER = "import sys; from conveyor.cli.app import invoke; sys.exit(invoke(sys.argv[1:]))"


def run(argv: list[str], *, columns: int, colour: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "NO_COLOR", "TERM"}}
    env |= {"COLUMNS": str(columns), "TERM": "xterm-256color"}
    if colour:
        env["FORCE_COLOR"] = "1"
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=60)


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
@pytest.mark.parametrize("columns", [60, 80, 132])
def test_the_fast_help_is_what_typer_draws(columns: int, colour: bool) -> None:
    fast = run([str(CONVEYOR), "--help"], columns=columns, colour=colour)
    typers = run([sys.executable, "-c", TYPERS_OWN], columns=columns, colour=colour)

    assert fast.returncode == 0, fast.stderr
    assert typers.returncode == 0, typers.stderr
    assert fast.stdout == typers.stdout
    assert ("\x1b[" in fast.stdout) is colour
    shown = re.sub(r"\x1b\[[0-9;]*m", "", fast.stdout)
    for name in COMMANDS:
        assert f"│ {name} " in shown


@pytest.mark.parametrize("args", [["--help"], []], ids=["--help", "bare"])
def test_the_typer_app_draws_the_same_root_help(args: list[str]) -> None:
    fast = run([str(CONVEYOR), *args], columns=80, colour=False)
    full = run([sys.executable, "-c", THROUGH_TYPER, *args], columns=80, colour=False)

    assert (fast.returncode, fast.stdout, fast.stderr) == (
        full.returncode,
        full.stdout,
        full.stderr,
    )
    assert fast.returncode == (ExitCode.OK if args else ExitCode.USAGE)
    assert "Usage: conveyor [OPTIONS] COMMAND [ARGS]..." in fast.stdout


def test_the_version_is_answered_the_same_way() -> None:
    fast = run([str(CONVEYOR), "--version"], columns=80, colour=False)
    full = run([sys.executable, "-c", THROUGH_TYPER, "--version"], columns=80, colour=False)

    assert fast.stdout == full.stdout == f"conveyor {__version__}\n"
    assert fast.returncode == full.returncode == ExitCode.OK


def test_the_fast_path_loads_neither_typer_nor_a_command() -> None:
    code = (
        "import sys\n"
        "from conveyor.cli.entry import answer\n"
        "answer(['--help'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'typer', 'click', 'pydantic'}"
        " or m.startswith('conveyor.cli.') and m not in"
        " {'conveyor.cli.entry', 'conveyor.cli.listing', 'conveyor.cli.commands'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_anything_else_goes_to_the_typer_app() -> None:
    assert entry.answer(["--help", "run"]) is None
    assert entry.answer(["run", "--help"]) is None
    assert entry.answer(["--version", "--help"]) is None
    assert (entry.OK, entry.USAGE) == (ExitCode.OK, ExitCode.USAGE)
