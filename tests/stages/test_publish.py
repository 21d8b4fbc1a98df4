"""The publish stage on real podman and a real registry: push once, reuse on a re-run.

The engine is the real :class:`PodmanEngine` behind a recorder that forwards
every port call and notes it, so a test can tell that nothing was pushed.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from conveyor.config import load_config
from conveyor.engines.podman import PodmanEngine
from conveyor.engines.port import (
    Engine,
)
from conveyor.errors import PolicyError, TagExistsError
from conveyor.stages.build import run_build
from conveyor.stages.context import DeliveryContext
from conveyor.stages.publish import REVISION_LABEL, run_publish
from recording_engine import RecordingEngine

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(120)]

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@dataclass(frozen=True)
class App:
    """A tiny app (FROM scratch) whose images go to a repository of its own."""

    root: Path
    registry: str
    repository: str

    def context(self, engine: Engine, sha: str) -> DeliveryContext:
        config = load_config(self.root / "conveyor.toml", env={})
        return DeliveryContext(config, engine, sha, self.root / ".conveyor" / sha)

    def address(self, sha: str) -> str:
        return f"{self.registry}/{self.repository}:{sha}"

    def stored(self, sha: str) -> tuple[str, bytes]:
        """The registry's digest header and manifest bytes for the tag."""
        response = httpx.get(
            f"http://{self.registry}/v2/{self.repository}/manifests/{sha}",
            headers={"Accept": ACCEPT},
        )
        assert response.status_code == 200, response.status_code
        return response.headers["docker-content-digest"], response.content


@pytest.fixture
def app(tmp_path: Path, registry: str) -> Iterator[App]:
    repository = f"stages/app-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "app"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    (root / "payload").write_text("first\n")
    (root / "conveyor.toml").write_text(
        f'[app]\nname = "app"\n\n'
        f'[registry]\nhost = "{registry}"\nrepository = "{repository}"\ninsecure = true\n\n'
        "[policy]\nallowed_registries = ['^127\\.0\\.0\\.1:[0-9]+/.+$']\n"
    )
    yield App(root, registry, repository)
    listed = subprocess.run(
        ["podman", "images", "-q", "--filter", "reference=localhost/conveyor/app"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if listed:
        subprocess.run(["podman", "rmi", "-f", *listed], check=False, capture_output=True)


def new_sha() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


async def push_directly(app: App, sha: str, dockerfile: str) -> str:
    """Build and push with podman itself, not through Conveyor; the registry digest."""
    context = app.root / f"foreign-{uuid.uuid4().hex[:6]}"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    local = f"localhost/conveyor-test/foreign:{uuid.uuid4().hex[:10]}"
    digestfile = context / "digest"
    try:
        await anyio.run_process(["podman", "build", "-q", "-t", local, str(context)])
        await anyio.run_process(
            ["podman", "push", "-q", "--tls-verify=false", "--digestfile", str(digestfile),
             local, f"docker://{app.address(sha)}"],
        )  # fmt: skip
    finally:
        await anyio.run_process(["podman", "rmi", "-f", local], check=False)
    return digestfile.read_text().strip()


async def test_publishing_the_same_commit_twice_reuses_the_pushed_image(app: App) -> None:
    sha = new_sha()
    first_engine = RecordingEngine(PodmanEngine())
    ctx = app.context(first_engine, sha)
    built = await run_build(ctx, {})
    first = await run_publish(ctx, {"build": built})
    assert first_engine.kinds() == ["build", "inspect_remote", "publish"]
    assert first["reused"] == "false"
    stored = app.stored(sha)
    assert first["image.digest"] == stored[0]

    # the re-run rebuilds (another payload, another created label): a different image
    (app.root / "payload").write_text("second\n")
    again_engine = RecordingEngine(PodmanEngine())
    ctx = app.context(again_engine, sha)
    rebuilt = await run_build(ctx, {})
    assert rebuilt["image.id"] != built["image.id"]
    again = await run_publish(ctx, {"build": rebuilt})

    assert again_engine.kinds() == ["build", "inspect_remote"]
    assert again == {
        "image.ref": first["image.ref"],
        "image.digest": first["image.digest"],
        "image.address": app.address(sha),
        "reused": "true",
        "note": "already in the registry, not pushed again",
    }
    assert first["image.ref"] == f"{app.address(sha)}@{stored[0]}"
    assert app.stored(sha) == stored


async def test_a_tag_pushed_by_something_else_without_the_label_is_refused(app: App) -> None:
    sha = new_sha()
    digest = await push_directly(app, sha, "FROM scratch\nCOPY Dockerfile /\n")
    stored = app.stored(sha)
    engine = RecordingEngine(PodmanEngine())
    ctx = app.context(engine, sha)
    built = await run_build(ctx, {})

    with pytest.raises(TagExistsError) as caught:
        await run_publish(ctx, {"build": built})

    assert engine.kinds() == ["build", "inspect_remote"]
    assert caught.value.ref == app.address(sha)
    assert caught.value.found == f"its image {digest} has no {REVISION_LABEL}"
    assert str(caught.value).startswith(
        f"image '{app.address(sha)}' refused: the tag already exists in the registry and "
        f"pushed tags are never overwritten (its image {digest} has no {REVISION_LABEL})"
    )
    assert app.stored(sha) == stored


async def test_a_tag_holding_another_commits_image_is_refused_naming_that_revision(
    app: App,
) -> None:
    sha, other = new_sha(), new_sha()
    digest = await push_directly(
        app, sha, f"FROM scratch\nCOPY Dockerfile /\nLABEL {REVISION_LABEL}={other}\n"
    )
    engine = RecordingEngine(PodmanEngine())
    ctx = app.context(engine, sha)

    with pytest.raises(TagExistsError) as caught:
        await run_publish(ctx, {"build": await run_build(ctx, {})})

    assert "publish" not in engine.kinds()
    assert caught.value.found == f"its image {digest} has {REVISION_LABEL}={other}, not this commit"
    assert app.stored(sha)[0] == digest


def commit_all(root: Path) -> str:
    """Make ``root`` a git checkout of one commit holding everything in it; its SHA."""
    committer = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    committer |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "app"]):
        subprocess.run(["git", *args], cwd=root, env=committer, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def tag_status(app: App, sha: str) -> int:
    return httpx.get(f"http://{app.registry}/v2/{app.repository}/manifests/{sha}").status_code


async def test_an_image_built_with_uncommitted_changes_is_not_pushed(app: App) -> None:
    sha = commit_all(app.root)
    (app.root / "payload").write_text("an edit nobody committed\n")
    engine = RecordingEngine(PodmanEngine())
    ctx = app.context(engine, sha)

    built = await run_build(ctx, {})  # the gates may still try the edited image
    with pytest.raises(PolicyError) as caught:
        await run_publish(ctx, {"build": built})

    assert caught.value.message == (
        f"image '{app.address(sha)}' refused: not commit {sha[:12]}: "
        "the source has uncommitted changes to payload"
    )
    assert caught.value.hint is not None
    assert "--skip publish" in caught.value.hint
    assert engine.kinds() == ["build"]  # the registry was not even asked
    assert tag_status(app, sha) == 404
