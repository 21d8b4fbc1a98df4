"""One pipeline definition drives both engines through the same port.

Statically, no stage module imports an engine or names one.  Dynamically, the
same stage functions run on the real Podman engine and on the Dagger engine
(over the schema-validating double of the Dagger API, ``dagger_query``): a
recorder in front of each engine shows that the stages made the same port
calls with the same values.
"""

from __future__ import annotations

import ast
import dataclasses
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from dagger_query import DaggerApiDouble

from conveyor.config import load_config
from conveyor.engines.dagger import DaggerEngine
from conveyor.engines.podman import PodmanEngine
from conveyor.engines.port import (
    BuildSpec,
    Engine,
    RunSpec,
)
from conveyor.stages.build import run_build
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import delivery_pipeline
from conveyor.stages.test import run_test
from recording_engine import RecordingEngine

STAGES = Path(__file__).resolve().parents[2] / "src" / "conveyor" / "stages"
HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
SHA = "0123456789abcdef0123456789abcdef01234567"


def test_no_stage_module_imports_or_names_an_engine() -> None:
    for module in sorted(STAGES.glob("*.py")):
        tree = ast.parse(module.read_text())
        imported = [
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
        assert not [m for m in imported if "dagger" in m or "podman" in m], module.name
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & {"PodmanEngine", "DaggerEngine"}, module.name


def without_labels_created(spec: Any) -> Any:
    if isinstance(spec, BuildSpec):
        labels = {k: v for k, v in spec.labels.items() if not k.endswith(".created")}
        return dataclasses.replace(spec, labels=labels)
    if isinstance(spec, RunSpec):
        return dataclasses.replace(spec, export_dir=None)
    return spec


@asynccontextmanager
async def context(engine: Engine, tmp_path: Path, name: str) -> AsyncIterator[DeliveryContext]:
    app = tmp_path / name / "hello"
    shutil.copytree(HELLO, app)
    config = load_config(app / "conveyor.toml", env={})
    yield DeliveryContext(config, engine, SHA, tmp_path / name / "artifacts")


@pytest.mark.anyio
async def test_the_same_stages_make_the_same_port_calls_on_podman_and_dagger(
    tmp_path: Path, base_image: str
) -> None:
    podman = RecordingEngine(PodmanEngine())
    double = DaggerApiDouble(
        answers={"exitCode": 0, "stdout": "4 passed", "stderr": "", "export": "ok"}
    )
    dagger = RecordingEngine(DaggerEngine(double.client()))
    for engine, name in ((podman, "podman"), (dagger, "dagger")):
        async with context(engine, tmp_path, name) as ctx:
            pipeline = delivery_pipeline(ctx)
            assert pipeline.order[:2] == ("test", "build")
            await run_build(ctx, {})
            test_outputs = await run_test(ctx, {})
            assert test_outputs["exit_code"] == "0"

    def shape(recorder: RecordingEngine) -> list[tuple[str, Any]]:
        return [(kind, without_labels_created(spec)) for kind, spec in recorder.calls]

    # and the Dagger engine really carried them into the (schema-checked) queries
    assert double.calls("dockerBuild")[0]["buildArgs"] == [
        {"name": "BASE_IMAGE", "value": "127.0.0.1:5000/conveyor/python:3.11"},
        {"name": "GIT_SHA", "value": SHA},
    ]
    assert ["python3", "-m", "pytest", "-q", "--junitxml=junit.xml"] in [
        call["args"] for call in double.calls("withExec")
    ]
    podman_calls = shape(podman)
    dagger_calls = shape(dagger)
    assert [kind for kind, _ in podman_calls] == ["build", "run"]
    assert [kind for kind, _ in dagger_calls] == ["build", "run"]
    # the same values, but for the per-world directories
    for (_, ours), (_, theirs) in zip(podman_calls, dagger_calls, strict=True):
        fields_ours = dataclasses.asdict(ours)
        fields_theirs = dataclasses.asdict(theirs)
        for key in ("context", "source"):
            if key in fields_ours:
                assert Path(fields_ours.pop(key)).name == Path(fields_theirs.pop(key)).name
        assert fields_ours == fields_theirs
