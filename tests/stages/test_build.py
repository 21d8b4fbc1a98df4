"""The build stage: the commit time, not the clock, dates the image (real git and podman)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anyio
import pytest

from conveyor.config import load_config
from conveyor.engines.podman import PodmanEngine
from conveyor.engines.port import BuildSpec
from conveyor.errors import ConfigError
from conveyor.stages.build import run_build
from conveyor.stages.context import DeliveryContext
from conveyor.stages.source import source_epoch
from recording_engine import RecordingEngine

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

COMMITTED = 1_650_000_000  # 2022-04-15T05:20:00Z


def commit(root: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@example.com",
        "GIT_AUTHOR_DATE": "1000000000 +0000",  # the committer time is the one that counts
        "GIT_COMMITTER_DATE": f"{COMMITTED} +0000",
    }
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", *argv], cwd=root, env=env, check=True, capture_output=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    (root / "payload").write_text("x\n")
    (root / "conveyor.toml").write_text(
        '[app]\nname = "datedapp"\n\n[registry]\nhost = "127.0.0.1:5000"\nrepository = "dated"\n'
    )
    return root


async def test_source_epoch_is_the_commit_time_unless_source_date_epoch_says(app: Path) -> None:
    sha = commit(app)

    assert await source_epoch(app, sha, env={}) == COMMITTED
    assert await source_epoch(app, sha, env={"SOURCE_DATE_EPOCH": "42"}) == 42
    assert await source_epoch(app, "f" * 40, env={}) is None  # not in this repository
    assert await source_epoch(app.parent, sha, env={}) is None  # not a repository
    with pytest.raises(ConfigError, match=r"SOURCE_DATE_EPOCH.*'yesterday' is not a whole"):
        await source_epoch(app, sha, env={"SOURCE_DATE_EPOCH": "yesterday"})


@pytest.mark.podman
async def test_the_image_is_dated_by_its_commit_in_config_and_label(app: Path) -> None:
    sha = commit(app)
    engine = RecordingEngine(PodmanEngine())
    ctx = DeliveryContext(load_config(app / "conveyor.toml", env={}), engine, sha, app / "out")
    built = await run_build(ctx, {})
    try:
        ((kind, spec),) = engine.calls
        assert kind == "build"
        assert isinstance(spec, BuildSpec)
        assert spec.timestamp == COMMITTED
        assert spec.labels["org.opencontainers.image.created"] == "2022-04-15T05:20:00Z"
        inspected = await anyio.run_process(
            ["podman", "image", "inspect", built["image.local_ref"]]
        )
        assert json.loads(inspected.stdout)[0]["Created"].startswith("2022-04-15T05:20:00")
    finally:
        await anyio.run_process(["podman", "rmi", "-f", built["image.local_ref"]], check=False)
