"""``run.pipeline`` through the real console script: graph and plan show the Python stages with
where they were written; each bad pipeline file is one error naming file:line, exit 3, nothing run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONVEYOR = Path(sys.executable).parent / "conveyor"
SHA = "0123456789abcdef0123456789abcdef01234567"

CONFIG = """\
[app]
name = "hello"

[registry]
host = "127.0.0.1:5000"
repository = "team/hello"

[run]
pipeline = "pipeline.py"

[stages.types]
image = "127.0.0.1:5000/conveyor/python:3.11"
command = ["true"]
needs = ["lint"]
"""

GOOD = """\
from conveyor.dsl import stage


@stage(needs=["build"], description="lint with ruff")
async def lint(ctx):
    return {"count": "0"}


@stage(name="smoke", replaces=True)
async def smoke(ctx):
    return await ctx.builtin()
"""


def conveyor(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return subprocess.run(
        [str(CONVEYOR), *args],
        cwd=directory,
        env={**env, "COLUMNS": "300", "CONVEYOR_SOURCE_SHA": SHA},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def project(tmp_path: Path, pipeline: str, config: str = CONFIG) -> Path:
    (tmp_path / "conveyor.toml").write_text(config, encoding="utf-8")
    (tmp_path / "pipeline.py").write_text(pipeline, encoding="utf-8")
    return tmp_path


def test_graph_shows_python_stages_with_description_and_origin(tmp_path: Path) -> None:
    directory = project(tmp_path, GOOD)

    tree = conveyor(directory, "graph")
    shown = conveyor(directory, "graph", "--format", "json")

    assert tree.returncode == 0, tree.stderr
    assert "lint - lint with ruff (pipeline.py:4)" in tree.stdout
    assert "smoke - run the image, probe its version (pipeline.py:9, replaces the built-in)" in (
        tree.stdout
    )
    stages = {s["name"]: s for s in json.loads(shown.stdout)["stages"]}
    assert stages["lint"]["needs"] == ["build"]
    assert stages["lint"]["description"] == "lint with ruff (pipeline.py:4)"
    assert stages["types"]["needs"] == ["lint"]
    assert {"lint", "types", "smoke"} <= set(stages["publish"]["needs"])


def test_plan_shows_where_each_python_stage_is_defined(tmp_path: Path) -> None:
    directory = project(tmp_path, GOOD)

    done = conveyor(directory, "plan", "--only", "types")

    assert done.returncode == 0, done.stderr
    assert (
        "\nlint (needs build): lint with ruff (pipeline.py:4)\n    defined in: pipeline.py:4 lint\n"
        in (done.stdout)
    )
    assert "\nsmoke (needs build): skip - not selected by --only types" in done.stdout


BAD = {
    "syntax": (
        "from conveyor.dsl import stage\n\n@stage\nasync def lint(ctx)\n    pass\n",
        "pipeline.py:4: SyntaxError: expected ':'",
    ),
    "import": (
        "import os\nimport no_such_module_for_conveyor\n",
        "pipeline.py:2: ModuleNotFoundError: No module named 'no_such_module_for_conveyor'",
    ),
    "declaration": (
        "from conveyor.dsl import stage\n\n@stage\ndef lint(ctx): ...\n",
        "pipeline.py:3: @stage on lint: a stage is an 'async def' function taking the context",
    ),
    "unknown-need": (
        "from conveyor.dsl import stage\n\n@stage(needs=['nope'])\nasync def lint(ctx): ...\n",
        "pipeline.py:3: lint.needs: 'nope' is not a stage",
    ),
    "builtin-name": (
        "from conveyor.dsl import stage\n\n@stage\nasync def build(ctx): ...\n",
        "pipeline.py:3: @stage build: 'build' is a built-in stage's name",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("command", ["graph", "plan", "run"])
def test_a_bad_pipeline_file_is_one_error_exit_3(tmp_path: Path, case: str, command: str) -> None:
    text, message = BAD[case]
    directory = project(tmp_path, text)

    done = conveyor(directory, command)

    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == f"error: {directory}/{message}"
    assert len(lines) == 2
    assert lines[1].startswith("  hint: ")
    # nothing ran: no engine chosen, no run directory
    assert done.stdout == ""
    assert not (directory / ".conveyor").exists()


def test_the_same_name_in_toml_and_python_is_one_error_naming_both(tmp_path: Path) -> None:
    directory = project(
        tmp_path, "from conveyor.dsl import stage\n\n@stage\nasync def types(ctx): ...\n"
    )

    done = conveyor(directory, "graph")

    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"error: {directory / 'conveyor.toml'}: stages.types: is defined twice "
        "(stages.types and pipeline.py:3 types)",
        "  hint: rename one of them",
    ]
