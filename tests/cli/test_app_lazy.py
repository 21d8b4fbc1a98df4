"""The root command imports a command's module only when that command is used."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.cli.app import COMMANDS, load_command

REPO = Path(__file__).resolve().parents[2]


def imported_after(argv: list[str], cwd: Path = REPO) -> list[str]:
    """The conveyor and third-party modules a fresh interpreter holds after running ``argv``."""
    code = (
        "import json, sys\n"
        "from conveyor.cli.app import app\n"
        "try:\n"
        f"    app({argv!r}, standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout = sys.__stdout__\n"
        "print('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_line_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    first_paragraph = inspect.cleandoc(command.help or "").split("\n\n")[0].strip()
    assert COMMANDS[name].help == first_paragraph


def test_help_lists_every_command_without_importing_one() -> None:
    modules = imported_after(["--help"])

    loaded = sorted({entry.module for entry in COMMANDS.values()} & set(modules))
    assert loaded == []
    for heavy in ("pydantic", "httpx", "ruamel.yaml", "opentelemetry", "anyio"):
        assert heavy not in modules


def test_a_command_imports_its_own_module_only() -> None:
    modules = imported_after(["trace", "--help"])

    assert "conveyor.cli.trace" in modules
    others = {entry.module for entry in COMMANDS.values()} - {"conveyor.cli.trace"}
    assert sorted(others & set(modules)) == []


def test_graph_loads_the_configuration_but_no_stage() -> None:
    modules = imported_after(["graph", "--format", "json"], cwd=REPO / "examples" / "hello")

    assert "conveyor.config.models" in modules
    stages = [m for m in modules if m.startswith("conveyor.stages.")]
    assert sorted(stages) == [
        "conveyor.stages.context",  # what every stage receives
        "conveyor.stages.delivery",  # the graph
        "conveyor.stages.python",  # the example's pipeline.py (run.pipeline)
    ]
    # no commit to resolve (plan does it): no git, so no process machinery either
    for heavy in (
        "httpx",
        "ruamel.yaml",
        "conveyor.gitops.renderer",
        "conveyor.scan.trivy",
        "conveyor.process",
        "conveyor.stages.source",
        "conveyor.stages.container",  # a Python stage's runner, imported when it runs
    ):
        assert heavy not in modules


def test_the_console_scripts_graph_loads_no_engine_scheduler_or_plugin_loader() -> None:
    code = (
        "import json, sys\n"
        "from conveyor.cli.entry import answer\n"
        "code = answer(['graph', '--format', 'json'])\n"
        "print('\\n' + json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO / "examples" / "hello",
        capture_output=True,
        text=True,
        check=True,
    )
    code, modules = json.loads(done.stdout.strip().splitlines()[-1])

    assert code == 0
    assert "conveyor.config.models" in modules
    assert "conveyor.dsl.context" in modules  # the example's pipeline.py imports conveyor.dsl
    for heavy in (
        "typer",
        "importlib.metadata",  # pydantic's plugin loader: plugins are disabled
        "conveyor.engines.port",  # graph and plan build none of the engine's values
        "anyio",  # what runs stages, not what describes them
        "conveyor.pipeline.scheduler",
        "conveyor.pipeline.result",  # what a run returns
        "conveyor.cli.exit_codes",  # the exit code table: for an error only
    ):
        assert heavy not in modules
