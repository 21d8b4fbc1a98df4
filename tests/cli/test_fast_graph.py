"""``conveyor graph`` from the console script's fast path: the typer command's output, exactly.

Each case runs twice through real processes, once through the installed
``conveyor`` (answered by conveyor.cli.entry without typer where it can) and
once through the typer app (conveyor.cli.app.invoke); stdout, stderr and the
exit code must be the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.cli import entry
from conveyor.cli.app import load_command
from conveyor.cli.stage_graph import GraphFormat

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"
CONVEYOR = Path(sys.executable).parent / "conveyor"
THROUGH_TYPER = "import sys; from conveyor.cli.app import invoke; sys.exit(invoke(sys.argv[1:]))"

CASES = [
    ["graph"],
    ["graph", "-f", "json"],
    ["graph", "--format", "mermaid"],
    ["graph", "--format=dot"],
    ["graph", "--config", str(HELLO / "conveyor.toml"), "-f", "json"],
    ["graph", "-c", "conveyor.toml", "--format", "tree"],
    ["graph", "--config=missing.toml"],  # a configuration error: exit 3
    ["graph", "-f", "json", "-f", "dot"],  # the last one wins, as in click
]


def both(args: list[str], cwd: Path) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    env = {**os.environ, "COLUMNS": "100"}
    runs = [
        subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
        )
        for argv in ([str(CONVEYOR), *args], [sys.executable, "-c", THROUGH_TYPER, *args])
    ]
    fast, full = ((r.returncode, r.stdout, r.stderr) for r in runs)
    return fast, full


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c) for c in CASES])
def test_the_fast_graph_is_the_typer_commands(args: list[str]) -> None:
    assert entry.graph_options(args[1:]) is not None  # answered without typer
    fast, full = both(args, HELLO)

    assert fast == full
    code, stdout, stderr = fast
    if "missing.toml" in " ".join(args):
        assert code == 3
        assert "missing.toml" in stderr
    else:
        assert code == 0, stderr
        assert "publish" in stdout


def test_no_configuration_here_ends_the_same_way(tmp_path: Path) -> None:
    fast, full = both(["graph"], tmp_path)

    assert fast == full
    assert fast[0] == 3
    assert "no conveyor.toml" in fast[2]


@pytest.mark.parametrize(
    "rest",
    [
        ["--help"],
        ["--format", "svg"],
        ["--nope"],
        ["-f"],
        ["--format="],
        ["-f=json"],
        ["--config", "--format"],
        ["extra"],
    ],
)
def test_anything_else_goes_to_typer(rest: list[str]) -> None:
    assert entry.graph_options(rest) is None
    fast, full = both(["graph", *rest], HELLO)
    assert fast == full


def test_the_fast_path_knows_exactly_the_commands_options() -> None:
    command = load_command("graph")
    spellings = {opt for param in command.params for opt in param.opts}
    assert spellings - {"--help"} == set(entry.GRAPH_OPTIONS)
    formats = next(p for p in command.params if "--format" in p.opts)
    assert formats.default in (GraphFormat.TREE, GraphFormat.TREE.value)


def test_the_fast_graph_loads_no_typer() -> None:
    code = (
        "import sys\n"
        "from conveyor.cli.entry import answer\n"
        "answer(['graph', '-f', 'json'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'typer', 'click'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=HELLO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("argv", "collecting"),
    [
        (["graph", "-f", "json"], False),  # answered here, then the process ends
        (["graph", "--help"], True),  # typer's: a command typer runs collects as always
        (["run", "--only", "test"], True),
    ],
)
def test_only_what_the_fast_path_answers_runs_without_the_garbage_collector(
    argv: list[str], collecting: bool
) -> None:
    # the typer app stands in for itself by saying whether the collector is on when it starts;
    # after the fast path answered, the exit reports it instead
    code = (
        "import atexit, gc, sys\n"
        "import conveyor.cli.app\n"
        "conveyor.cli.app.main = lambda: print('app', gc.isenabled())\n"
        "atexit.register(lambda: print('exit', gc.isenabled()))\n"
        "from conveyor.cli.entry import main\n"
        f"sys.argv = ['conveyor', *{argv!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=HELLO, capture_output=True, text=True, check=False
    )

    lines = done.stdout.strip().splitlines()
    assert lines[-1] == f"exit {collecting}"
    assert (f"app {collecting}" in lines) is collecting  # typer's app ran only when it had to
    assert done.returncode == 0
