"""Registry faults, injected by a proxy in front of a real registry, through the real product.

Each test builds a tiny image with the build stage on real podman and runs
the publish stage (existence check, push, read-back) of :class:`PodmanEngine`
against :mod:`registry_proxy`, which forwards to a real docker-registry
unless a fault is injected.  For every fault it checks the error class, the
exit code the CLI gives it, that nothing was pushed when the tag's state was
unknown, and the tag's digest afterwards as ``skopeo inspect`` reads it from
the registry itself.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.config import load_config
from conveyor.engines.podman import PodmanEngine
from conveyor.errors import (
    RegistryAnswerError,
    RegistryAuthError,
    TagRaceError,
    UnreachableError,
)
from conveyor.pipeline.graph import Outputs
from conveyor.stages.build import run_build
from conveyor.stages.context import DeliveryContext
from conveyor.stages.publish import REVISION_LABEL, run_publish
from faults.registry_proxy import RegistryProxy, registry_proxy

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(120)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def proxy(registry: str) -> Iterator[RegistryProxy]:
    with registry_proxy(registry) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults_left(proxy: RegistryProxy) -> Iterator[None]:
    proxy.clear()
    yield
    proxy.clear()


def sha_with_404() -> str:
    """A 40-hex commit SHA containing ``404`` (about 1% of real SHAs do)."""
    return (secrets.token_hex(8) + "404" + secrets.token_hex(16))[:40]


@dataclass(frozen=True)
class App:
    """A FROM-scratch app published through the proxy to a repository of its own."""

    root: Path
    proxy: RegistryProxy
    upstream: str
    repository: str

    def context(self, engine: PodmanEngine, sha: str) -> DeliveryContext:
        config = load_config(self.root / "conveyor.toml", env={})
        return DeliveryContext(config, engine, sha, self.root / ".conveyor" / sha)

    def manifest_path(self, sha: str) -> str:
        return f"/v2/{self.repository}/manifests/{sha}"

    def pushes(self, sha: str) -> list[str]:
        return self.proxy.requests("PUT", self.manifest_path(sha))

    def digest(self, sha: str) -> str | None:
        """The tag's digest as skopeo reads it from the registry itself; ``None``: absent."""
        found = subprocess.run(
            ["skopeo", "inspect", "--no-tags", "--tls-verify=false",
             f"docker://{self.upstream}/{self.repository}:{sha}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if found.returncode != 0:
            assert "manifest unknown" in found.stderr, found.stderr
            return None
        digest: str = json.loads(found.stdout)["Digest"]
        return digest

    def push_foreign(self, sha: str, revision: str | None = None) -> str:
        """Push another image to the tag with podman itself, straight to the registry."""
        context = self.root / f"foreign-{uuid.uuid4().hex[:6]}"
        context.mkdir()
        label = f"LABEL {REVISION_LABEL}={revision}\n" if revision else ""
        (context / "Dockerfile").write_text(f"FROM scratch\nCOPY Dockerfile /\n{label}")
        digestfile = context / "digest"
        built = subprocess.run(
            ["podman", "build", "-q", str(context)],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout.strip()  # fmt: skip
        try:
            subprocess.run(
                ["podman", "push", "-q", "--tls-verify=false", "--digestfile", str(digestfile),
                 built, f"docker://{self.upstream}/{self.repository}:{sha}"],
                capture_output=True, timeout=120, check=True,
            )  # fmt: skip
        finally:
            subprocess.run(["podman", "rmi", "-f", built], capture_output=True, check=False)
        return digestfile.read_text().strip()


def write_app(root: Path, host: str, repository: str) -> None:
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    (root / "payload").write_text(f"{uuid.uuid4()}\n")
    (root / "conveyor.toml").write_text(
        f'[app]\nname = "faulty"\n\n'
        f'[registry]\nhost = "{host}"\nrepository = "{repository}"\n\n'
        "[policy]\nallowed_registries = ['^127\\.0\\.0\\.1:[0-9]+/.+$']\n"
    )


@pytest.fixture
def app(tmp_path: Path, proxy: RegistryProxy, registry: str) -> Iterator[App]:
    repository = f"faults/app-{uuid.uuid4().hex[:8]}"
    write_app(tmp_path / "app", proxy.host, repository)
    yield App(tmp_path / "app", proxy, registry, repository)
    remove_local_images()


def remove_local_images(environ: dict[str, str] | None = None) -> None:
    listed = subprocess.run(
        ["podman", "images", "-q", "--filter", "reference=localhost/conveyor/faulty"],
        capture_output=True, text=True, check=False, env=environ,
    ).stdout.split()  # fmt: skip
    if listed:
        subprocess.run(
            ["podman", "rmi", "-f", *set(listed)], check=False, capture_output=True, env=environ
        )


async def build(app: App, engine: PodmanEngine, sha: str) -> tuple[DeliveryContext, Outputs]:
    ctx = app.context(engine, sha)
    return ctx, await run_build(ctx, {})


# -- the existence check -------------------------------------------------------------


@pytest.mark.parametrize("tag_before", ["absent", "held by another image"])
async def test_a_500_on_the_manifest_for_a_sha_containing_404_never_pushes(
    app: App, tag_before: str
) -> None:
    sha = sha_with_404()
    before = app.push_foreign(sha) if tag_before != "absent" else None
    ctx, built = await build(app, PodmanEngine(), sha)
    app.proxy.inject("GET|HEAD", app.manifest_path(sha), "status", status=500)

    with pytest.raises(UnreachableError) as caught:
        await run_publish(ctx, {"build": built})

    assert exit_code_for(caught.value) is ExitCode.UNREACHABLE
    assert "answered 500" in str(caught.value)
    assert app.pushes(sha) == []
    assert app.proxy.requests("POST") == []  # no upload started either
    assert app.digest(sha) == before


@pytest.mark.parametrize("status", [502, 503, 429])
async def test_other_registry_failures_are_unreachable_too(app: App, status: int) -> None:
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(), sha)
    app.proxy.inject("GET", app.manifest_path(sha), "status", status=status)
    with pytest.raises(UnreachableError):
        await run_publish(ctx, {"build": built})
    assert app.pushes(sha) == []
    assert app.digest(sha) is None


async def test_a_hanging_registry_times_out_as_unreachable(app: App) -> None:
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(registry_timeout=1.5), sha)
    app.proxy.inject("GET", app.manifest_path(sha), "hang")

    started = time.monotonic()
    with pytest.raises(UnreachableError) as caught:
        await run_publish(ctx, {"build": built})

    assert time.monotonic() - started < 10
    assert "no answer within 1.5s" in str(caught.value)
    assert exit_code_for(caught.value) is ExitCode.UNREACHABLE
    assert app.pushes(sha) == []


@pytest.mark.parametrize("action", ["drop", "cut"])
async def test_a_connection_dropped_during_the_check_is_unreachable(app: App, action: str) -> None:
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(), sha)
    app.proxy.inject("GET", app.manifest_path(sha), action)  # type: ignore[arg-type]

    with pytest.raises(UnreachableError) as caught:
        await run_publish(ctx, {"build": built})

    assert exit_code_for(caught.value) is ExitCode.UNREACHABLE
    assert app.pushes(sha) == []
    assert app.digest(sha) is None


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_a_credentials_error(app: App, status: int) -> None:
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(), sha)
    app.proxy.inject("GET", app.manifest_path(sha), "status", status=status)

    with pytest.raises(RegistryAuthError) as caught:
        await run_publish(ctx, {"build": built})

    assert caught.value.status == status
    assert "podman login" in str(caught.value)
    assert exit_code_for(caught.value) is ExitCode.FAILED
    assert app.pushes(sha) == []


@pytest.mark.parametrize("status", [404, 400, 302])
async def test_an_unexpected_answer_stops_without_a_push(app: App, status: int) -> None:
    # a 404 whose body is not the registry's "manifest unknown" (a proxy's page) included
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(), sha)
    app.proxy.inject("GET", app.manifest_path(sha), "status", status=status)

    with pytest.raises(RegistryAnswerError) as caught:
        await run_publish(ctx, {"build": built})

    assert f"{status} (UNKNOWN: injected fault" in str(caught.value)
    assert "nothing was pushed" in str(caught.value)
    assert exit_code_for(caught.value) is ExitCode.FAILED
    assert app.pushes(sha) == []
    assert app.digest(sha) is None


# -- the push --------------------------------------------------------------------------


async def test_a_push_whose_answer_was_lost_is_checked_again_and_succeeds(app: App) -> None:
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(), sha)
    app.proxy.inject("PUT", app.manifest_path(sha), "drop-after")

    published = await run_publish(ctx, {"build": built})

    # the manifest reached the registry each time podman sent it; no answer came back
    puts = [a for m, p, a in app.proxy.seen if m == "PUT" and p == app.manifest_path(sha)]
    assert puts
    assert set(puts) == {"drop-after"}
    assert published["reused"] == "false"
    assert published["image.digest"] == app.digest(sha)


async def test_a_500_during_the_upload_is_unreachable_and_the_tag_stays_absent(app: App) -> None:
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(), sha)
    app.proxy.inject("POST", f"/v2/{app.repository}/blobs/uploads/", "status", status=500)

    with pytest.raises(UnreachableError) as caught:
        await run_publish(ctx, {"build": built})

    assert exit_code_for(caught.value) is ExitCode.UNREACHABLE
    assert app.digest(sha) is None


async def test_a_writer_between_our_push_and_the_read_back_fails_naming_both_digests(
    app: App,
) -> None:
    sha = sha_with_404()
    ctx, built = await build(app, PodmanEngine(), sha)
    theirs: list[str] = []

    def other_writer() -> None:
        # the first manifest read after our push: another writer lands now
        if app.pushes(sha) and not theirs:
            theirs.append(app.push_foreign(sha, revision=sha))

    app.proxy.inject("GET", app.manifest_path(sha), "before", hook=other_writer)

    with pytest.raises(TagRaceError) as caught:
        await run_publish(ctx, {"build": built})

    assert theirs
    assert caught.value.theirs == theirs[0]
    assert caught.value.ours != theirs[0]
    assert caught.value.ours in str(caught.value)
    assert theirs[0] in str(caught.value)
    assert exit_code_for(caught.value) is ExitCode.POLICY
    assert len(app.pushes(sha)) == 1  # ours, once: nothing pushed again over theirs
    assert app.digest(sha) == theirs[0]


# -- two pipelines of one commit, two image stores ---------------------------------------


def image_store(directory: Path) -> dict[str, str]:
    """The environment of a runner with its own image store (graphroot and runroot)."""
    directory.mkdir(parents=True)
    conf = directory / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{directory / "graph"}"\n'
        f'runroot = "{directory / "run"}"\n'
    )
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}


async def test_two_pipelines_of_one_commit_with_two_image_stores_push_once(
    app: App, tmp_path: Path
) -> None:
    sha = sha_with_404()
    stores = [image_store(tmp_path / f"store-{n}") for n in (1, 2)]
    engines = [PodmanEngine(environ=env) for env in stores]
    built = [await build(app, engine, sha) for engine in engines]
    assert built[0][1]["image.id"] != built[1][1]["image.id"]  # not reproducible: two images
    results: list[Outputs] = []

    async def publish(n: int) -> None:
        ctx, outputs = built[n]
        results.append(await run_publish(ctx, {"build": outputs}))

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(publish, 0)
            group.start_soon(publish, 1)
    finally:
        for env in stores:
            remove_local_images(env)

    assert len(app.pushes(sha)) == 1
    assert sorted(r["reused"] for r in results) == ["false", "true"]
    assert results[0]["image.digest"] == results[1]["image.digest"] == app.digest(sha)


# -- through the console script ------------------------------------------------------


def commit_with_404(repo: Path) -> str:
    """Commit ``repo``'s files under a SHA containing ``404``; the SHA."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    }  # fmt: skip

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("add", "-A")
    tree = git("write-tree")
    for attempt in range(100_000):
        sha = git("commit-tree", tree, "-m", f"attempt {attempt}")
        if "404" in sha:
            git("update-ref", "HEAD", sha)
            return sha
    raise AssertionError("no SHA with 404 in 100000 commits")


def conveyor_run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "conveyor"), "run", "--engine", "podman"],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "CI": "true"},
    )  # fmt: skip


async def committed(app: App, registry_options: str = "") -> str:
    """Make ``app`` a repository for ``conveyor run`` (build and publish only); its SHA."""
    config = (app.root / "conveyor.toml").read_text()
    config = config.replace("[policy]", f"{registry_options}\n[policy]")
    (app.root / "conveyor.toml").write_text(
        config + "\n[stages.scan]\nenabled = false\n\n[stages.smoke]\nenabled = false\n"
    )
    return await anyio.to_thread.run_sync(commit_with_404, app.root)


async def test_conveyor_run_on_a_sha_containing_404_never_pushes_through_a_500(
    app: App,
) -> None:
    sha = await committed(app)

    app.proxy.inject("GET|HEAD", app.manifest_path(sha), "status", status=500)
    refused = await anyio.to_thread.run_sync(conveyor_run, app.root)
    assert refused.returncode == ExitCode.UNREACHABLE, refused.stdout + refused.stderr
    # errors may go to stdout or stderr: what counts is that the user sees this line
    assert f"registry {app.proxy.host} is unreachable: it answered 500" in (
        refused.stdout + refused.stderr
    )
    assert "Traceback" not in refused.stdout + refused.stderr
    assert app.pushes(sha) == []
    assert app.digest(sha) is None

    app.proxy.clear()
    published = await anyio.to_thread.run_sync(conveyor_run, app.root)
    assert published.returncode == ExitCode.OK, published.stdout + published.stderr
    digest = app.digest(sha)
    assert f"published {app.proxy.host}/{app.repository}:{sha}@{digest}" in published.stdout

    app.proxy.inject("GET|HEAD", app.manifest_path(sha), "status", status=500)
    again = await anyio.to_thread.run_sync(conveyor_run, app.root)
    assert again.returncode == ExitCode.UNREACHABLE
    assert len(app.pushes(sha)) == 1
    assert app.digest(sha) == digest


async def test_conveyor_run_against_a_hanging_registry_exits_7_within_its_timeout(
    app: App,
) -> None:
    sha = await committed(app, 'timeout = "1s"\n')
    app.proxy.inject("GET|HEAD", app.manifest_path(sha), "hang")

    started = time.monotonic()
    hung = await anyio.to_thread.run_sync(conveyor_run, app.root)

    assert time.monotonic() - started < 30
    assert hung.returncode == ExitCode.UNREACHABLE, hung.stdout + hung.stderr
    assert "no answer within 1s" in hung.stdout + hung.stderr
    assert app.pushes(sha) == []
    assert app.digest(sha) is None
