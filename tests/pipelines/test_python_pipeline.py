"""The module runs the user's DAG: ``ci`` with the stages of conveyor.toml and run.pipeline,
``stage --name X`` one of them with what it needs.

As in test_functions.py, ``dag`` is the Dagger API double
(tests/engines/dagger_query.py) that validates every query against the
v0.21.8 schema; the source the ``export`` would produce is written into the
function's scratch directory first.  The loader, the scheduler, the Python
stages and their ``ctx.run`` (through ``DaggerEngine``) are real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conveyor_pipelines import Conveyor
from conveyor_pipelines.session import ARTIFACTS_DIR, SOURCE_DIR
from dagger_query import DaggerApiDouble

from conveyor.errors import ConfigError, StageCommandError

SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
RUFF = "127.0.0.1:5000/tools/ruff:0.6.9"

CONFIG = f"""
[app]
name = "hello"

[registry]
host = "myacr.azurecr.io"
repository = "hello"

[run]
pipeline = "ci/pipeline.py"

[stages.scan]
enabled = false

[stages.smoke]
enabled = false

[stages.types]
image = "{RUFF}"
command = ["mypy", "."]
needs = ["lint"]
"""

PIPELINE = f'''\
from conveyor.dsl import stage


@stage(needs=["build"], description="ruff on the source")
async def lint(ctx):
    ran = await ctx.run("{RUFF}", ["ruff", "check", "."])
    return {{"said": ran.output.strip(), "built": ctx.outputs["build"]["image.local_ref"][:6]}}
'''


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The function's scratch directory holding the exported source."""
    work = tmp_path / "work"
    source = work / SOURCE_DIR
    (source / "ci").mkdir(parents=True)
    (source / "conveyor.toml").write_text(CONFIG, encoding="utf-8")
    (source / "Dockerfile").write_text("FROM python:3.12-slim\n", encoding="utf-8")
    (source / "ci" / "pipeline.py").write_text(PIPELINE, encoding="utf-8")
    monkeypatch.chdir(work)
    return work


def module() -> Any:
    return Conveyor()


def rows(workdir: Path) -> dict[str, tuple[str, str]]:
    summary = json.loads((workdir / ARTIFACTS_DIR / "summary.json").read_text())
    return {row["name"]: (row["status"], row["reason"]) for row in summary["stages"]}


@pytest.mark.anyio
async def test_ci_runs_the_python_stages_as_gates_of_publish(workdir: Path) -> None:
    double = DaggerApiDouble(
        answers={"export": "ok", "exitCode": 3, "stdout": "", "stderr": "E501 too long"}
    )

    with double.as_dag() as dag:
        await module().ci(source=dag.directory(), sha=SHA)

    stages = rows(workdir)
    assert list(stages) == ["build", "lint", "types", "publish"]
    assert stages["lint"][0] == "failed"
    assert stages["lint"][1].startswith("stage 'lint' failed (exit code 3): ruff check .")
    assert stages["types"] == ("skipped", "dependency 'lint' failed")
    assert stages["publish"][0] == "skipped"
    # the Python stage's container went through the engine: the image and the command
    assert [c["args"] for c in double.calls("withExec")] == [["ruff", "check", "."]]
    assert {"address": RUFF} in double.calls("from")
    assert double.calls("publish") == []


@pytest.mark.anyio
async def test_stage_runs_one_stage_with_what_it_needs(workdir: Path) -> None:
    double = DaggerApiDouble(
        answers={"export": "ok", "exitCode": 0, "stdout": "All checks passed!", "stderr": ""}
    )

    with double.as_dag() as dag:
        shown = await module().stage(source=dag.directory(), name="types", sha=SHA)

    stages = rows(workdir)
    ran = {name for name, (status, _) in stages.items() if status == "success"}
    assert ran == {"build", "lint", "types"}
    assert stages["publish"] == ("skipped", "not selected by --only types")
    assert [c["args"] for c in double.calls("withExec")] == [["ruff", "check", "."], ["mypy", "."]]
    outputs = dict(line.split("=", 1) for line in shown.splitlines())
    assert outputs["exit_code"] == "0"
    summary = json.loads((workdir / ARTIFACTS_DIR / "summary.json").read_text())
    assert summary["outputs"]["lint"] == {"said": "All checks passed!", "built": "dagger"}


@pytest.mark.anyio
async def test_stage_of_a_python_stage_returns_its_outputs(workdir: Path) -> None:
    double = DaggerApiDouble(answers={"export": "ok", "exitCode": 0, "stdout": "ok", "stderr": ""})

    with double.as_dag() as dag:
        shown = await module().stage(source=dag.directory(), name="lint", sha=SHA)

    assert shown == "built=dagger\nsaid=ok\n"
    ran = {name for name, (status, _) in rows(workdir).items() if status == "success"}
    assert ran == {"build", "lint"}


@pytest.mark.anyio
async def test_stage_fails_the_call_with_the_stages_error(workdir: Path) -> None:
    double = DaggerApiDouble(answers={"export": "ok", "exitCode": 1, "stdout": "", "stderr": "E"})

    with double.as_dag() as dag, pytest.raises(StageCommandError) as raised:
        await module().stage(source=dag.directory(), name="lint", sha=SHA)

    assert raised.value.stage == "lint"


@pytest.mark.anyio
async def test_stage_of_an_unknown_name_lists_the_stages(workdir: Path) -> None:
    with (
        DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag,
        pytest.raises(ConfigError) as raised,
    ):
        await module().stage(source=dag.directory(), name="nope", sha=SHA)

    assert "build, lint, types, publish, report" in str(raised.value)
    assert not (workdir / ARTIFACTS_DIR / "summary.json").exists()


@pytest.mark.anyio
async def test_a_pipeline_file_that_does_not_load_fails_ci_before_any_stage(
    workdir: Path,
) -> None:
    (workdir / SOURCE_DIR / "ci" / "pipeline.py").write_text("import no_such_thing_here\n")

    with (
        DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag,
        pytest.raises(ConfigError) as raised,
    ):
        await module().ci(source=dag.directory(), sha=SHA)

    assert str(raised.value).startswith(
        f"{workdir / SOURCE_DIR / 'ci' / 'pipeline.py'}:1: ModuleNotFoundError"
    )
    assert not (workdir / ARTIFACTS_DIR / "summary.json").exists()
