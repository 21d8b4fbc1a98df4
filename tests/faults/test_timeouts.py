"""A git remote that accepts and never answers: the stage timeout holds within seconds.

Real git against a real smart-HTTP server on loopback (``tests/git_http.py``)
that accepts every connection and never answers; the manifest and policy
stages run their git in worker threads, and the scheduler's stage timeout
must still end them: the git processes killed with their process groups,
the clone removed, the error mapped to the timeout exit code.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import e2e.conftest
from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import StageTimeoutError
from conveyor.pipeline.graph import Outputs, Pipeline, Stage, StageInputs
from conveyor.pipeline.result import Status
from conveyor.pipeline.scheduler import run_pipeline
from conveyor.process import KILL_GRACE
from conveyor.secrets import Secret
from conveyor.stages.context import DeliveryContext
from conveyor.stages.manifest import run_manifest, run_policy
from e2e.conftest import World
from faults.processes import none_left
from git_http import GitHttpRemote, serve_git_http

pytestmark = pytest.mark.timeout(60)

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
STAGING = "apps/hello/overlays/staging"
SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
REF = f"myacr.azurecr.io/hello:{SHA}@sha256:{'7' * 64}"
TOKEN = "hang-t0ken"
STAGE_TIMEOUT = 5.0
world = e2e.conftest.world  # the example as shipped, for the one full run


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hanging_remote(tmp_path: Path) -> Iterator[GitHttpRemote]:
    seed = tmp_path / "seed"
    shutil.copytree(RESOURCES, seed)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "m"],
    ):
        subprocess.run(["git", *args], cwd=seed, check=True)
    bare = tmp_path / "manifests.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
    with serve_git_http(bare, TOKEN, stall=lambda method, path: math.inf) as remote:
        yield remote


def delivery_context(tmp_path: Path, repo: str) -> DeliveryContext:
    app = tmp_path / "app"
    app.mkdir()
    (app / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "hello"\n\n'
        f'[gitops]\nrepo = "{repo}"\nbranch = "main"\n\n'
        f'[gitops.environments.staging]\npath = "{STAGING}"\npromotion = "commit"\n',
        encoding="utf-8",
    )
    clones = tmp_path / "clones"
    clones.mkdir()
    return DeliveryContext(
        load_config(app / "conveyor.toml", env={}),
        NoEngine(),
        SHA,
        tmp_path / "artifacts",
        git_token=Secret("MANIFEST_TOKEN", TOKEN),
        workdir=clones,
    )


@pytest.mark.anyio
async def test_a_hanging_git_remote_ends_at_the_stage_timeout(
    tmp_path: Path, hanging_remote: GitHttpRemote
) -> None:
    ctx = delivery_context(tmp_path, hanging_remote.url)

    async def publish(_: StageInputs) -> Outputs:
        return {"image.ref": REF}

    pipeline = Pipeline(
        [
            Stage("publish", publish),
            # both run git in a worker thread: clone (manifest) and clone (policy)
            Stage(
                "manifest",
                functools.partial(run_manifest, ctx),
                needs=("publish",),
                timeout=STAGE_TIMEOUT,
            ),
            Stage(
                "policy",
                functools.partial(run_policy, ctx),
                needs=("publish",),
                timeout=STAGE_TIMEOUT,
            ),
        ]
    )
    started = time.monotonic()
    result = await run_pipeline(pipeline)
    elapsed = time.monotonic() - started

    for name in ("manifest", "policy"):
        stage = result[name]
        assert stage.status is Status.FAILED, stage
        assert isinstance(stage.error, StageTimeoutError)
        assert stage.reason == f"stage {name!r} ran past its timeout of 5s"
        assert exit_code_for(stage.error) == ExitCode.TIMEOUT == 124
    # the timeout holds within the kill grace, not git's own 300 s
    assert STAGE_TIMEOUT <= elapsed < STAGE_TIMEOUT + KILL_GRACE + 2
    assert hanging_remote.requests  # git did reach the server, which never answered
    port = hanging_remote.url.split(":")[2].split("/")[0]
    assert none_left(f"127.0.0.1:{port}") == []  # git and git-remote-http are gone
    assert ctx.workdir is not None
    assert list(ctx.workdir.iterdir()) == []  # both clones removed


@pytest.mark.timeout(300)
def test_conveyor_run_against_a_hanging_manifest_remote_exits_with_the_timeout_code(
    world: World,
) -> None:
    world.commit_app("hanging manifest remote")
    with serve_git_http(world.manifests, TOKEN, stall=lambda method, path: math.inf) as remote:
        done = world.run(
            "alpine-310.json",
            env={
                "CONVEYOR_GITOPS__REPO": remote.url,
                "CONVEYOR_GITOPS__TOKEN_ENV": "MANIFEST_TOKEN",
                "MANIFEST_TOKEN": TOKEN,
                "CONVEYOR_STAGES__MANIFEST__TIMEOUT": '"5s"',
            },
        )
        port = remote.url.split(":")[2].split("/")[0]
        left = none_left(f"127.0.0.1:{port}")
    assert done.returncode == ExitCode.TIMEOUT == 124, done.stdout + done.stderr
    assert "error in stage manifest: stage 'manifest' ran past its timeout of 5s" in done.stderr
    runs = sorted((world.app / ".conveyor" / "runs").iterdir())
    summary = json.loads((runs[-1] / "artifacts" / "summary.json").read_text())
    manifest = next(row for row in summary["stages"] if row["name"] == "manifest")
    assert manifest["status"] == "failed"
    assert STAGE_TIMEOUT <= manifest["duration"] < STAGE_TIMEOUT + KILL_GRACE + 2
    assert left == []
