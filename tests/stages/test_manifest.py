"""The manifest and policy stages render through the context's ``render`` seam.

Real git (a bare manifest repository seeded with tests/resources/manifests)
and the host's real ``kubectl kustomize``: the renderer the tests put in the
context records each call and then delegates to
:func:`conveyor.gitops.renderer.render` (or changes what it returns, to show
that the stage checks exactly what the seam rendered).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ManifestError, PolicyError
from conveyor.gitops.renderer import render
from conveyor.gitops.renders import Rendered
from conveyor.policy.workloads import workload_images
from conveyor.stages.context import DeliveryContext
from conveyor.stages.manifest import run_manifest, run_policy

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
STAGING = "apps/hello/overlays/staging"
SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
DIGEST = "sha256:" + "7" * 64
REF = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"


# the seeds pin commits no source repository has: the order is tested in test_manifest_order.py
UNORDERED = {"CONVEYOR_STAGES__MANIFEST__ALLOW_UNORDERED": "true"}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@dataclass
class RecordingRenderer:
    """Records every directory it renders, the thread and the kustomization it saw,
    then renders with ``then`` (the host's kubectl unless told)."""

    then: Callable[[Path], str] = render
    calls: list[tuple[Path, threading.Thread, str]] = field(default_factory=list)

    def __call__(self, directory: Path) -> str:
        text = (directory / "kustomization.yaml").read_text(encoding="utf-8")
        self.calls.append((directory, threading.current_thread(), text))
        return self.then(directory)


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """A bare manifest repository whose main holds tests/resources/manifests."""
    seed = tmp_path / "seed"
    shutil.copytree(RESOURCES, seed)
    git("init", "--quiet", "--initial-branch=main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "m", cwd=seed)
    path = tmp_path / "manifests.git"
    git("clone", "--quiet", "--bare", str(seed), str(path))
    return path


def context(tmp_path: Path, bare: Path, renderer: RecordingRenderer) -> DeliveryContext:
    app = tmp_path / "app"
    app.mkdir()
    (app / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "hello"\n\n'
        f'[gitops]\nrepo = "{bare}"\nbranch = "main"\n\n'
        f'[gitops.environments.staging]\npath = "{STAGING}"\npromotion = "commit"\n',
        encoding="utf-8",
    )
    clones = tmp_path / "clones"
    clones.mkdir()
    return DeliveryContext(
        load_config(app / "conveyor.toml", env=UNORDERED),
        NoEngine(),
        SHA,
        tmp_path / "artifacts",
        render=renderer,
        workdir=clones,
    )


def staging_on_main(bare: Path) -> str:
    return git("--git-dir", str(bare), "show", f"main:{STAGING}/kustomization.yaml")


async def test_manifest_checks_the_edited_overlay_with_ctx_render_before_it_commits(
    tmp_path: Path, bare: Path
) -> None:
    renderer = RecordingRenderer()
    ctx = context(tmp_path, bare, renderer)

    outputs = await run_manifest(ctx, {"publish": {"image.ref": REF}})

    ((directory, thread, seen),) = renderer.calls
    # the clone in ctx.workdir, after the edit and before the commit, in a worker thread
    assert ctx.workdir is not None
    assert directory.is_relative_to(ctx.workdir)
    assert directory.relative_to(ctx.workdir).parts[1:] == ("repo", *STAGING.split("/"))
    assert thread is not threading.main_thread()
    assert f"digest: {DIGEST}" in seen
    assert outputs["changed"] == "true"
    assert git("--git-dir", str(bare), "rev-parse", "main") == outputs["commit"]
    assert f"digest: {DIGEST}" in staging_on_main(bare)
    assert list(ctx.workdir.iterdir()) == []  # the clone is removed


async def test_manifest_commits_nothing_when_ctx_render_does_not_show_the_new_image(
    tmp_path: Path, bare: Path
) -> None:
    before = git("--git-dir", str(bare), "rev-parse", "main")
    others: list[tuple[bool, bool]] = []

    def wrong(directory: Path) -> str:
        # is what the overlay does not need (production, the worker app) checked out?
        others.append(
            ((directory.parent / "production").is_dir(), (directory.parents[2] / "worker").is_dir())
        )
        return render(directory).replace(DIGEST, "x")

    renderer = RecordingRenderer(then=wrong)
    ctx = context(tmp_path, bare, renderer)

    with pytest.raises(ManifestError) as caught:
        await run_manifest(ctx, {"publish": {"image.ref": REF}})

    assert "does not render the image" in caught.value.problem
    # first with only the overlay's closure checked out, then once more with every file
    # (a layout the closure misses must never fail the check wrongly)
    assert others == [(False, False), (True, True)]
    assert git("--git-dir", str(bare), "rev-parse", "main") == before


async def test_policy_renders_the_branch_tip_with_ctx_render(tmp_path: Path, bare: Path) -> None:
    renderer = RecordingRenderer()
    ctx = context(tmp_path, bare, renderer)

    outputs = await run_policy(ctx, {})

    ((directory, thread, _),) = renderer.calls
    assert ctx.workdir is not None
    assert directory.relative_to(ctx.workdir).parts[0].startswith("conveyor-policy-")
    assert directory.relative_to(ctx.workdir).parts[1:] == ("repo", *STAGING.split("/"))
    assert thread is not threading.main_thread()
    assert outputs == {
        "environment": "staging",
        "violations": "0",
        "rendered": "from a clone of the branch tip",
    }


async def test_policy_checks_the_manifest_stages_render_of_the_commit_it_pushed(
    tmp_path: Path, bare: Path
) -> None:
    renderer = RecordingRenderer()
    ctx = context(tmp_path, bare, renderer)
    pushed = await run_manifest(ctx, {"publish": {"image.ref": REF}})

    outputs = await run_policy(ctx, {})

    # one render in all: the manifest stage's, of the tree main now holds
    assert len(renderer.calls) == 1
    tree = git("--git-dir", str(bare), "rev-parse", "main^{tree}")
    assert outputs["rendered"] == (
        f"by the manifest stage: tree {tree[:12]} of commit {pushed['commit'][:12]}"
    )
    kept = ctx.renders.find(pushed["commit"], STAGING)
    assert kept is not None
    assert kept.tree == tree
    assert [r.source for r in kept.renders] == [STAGING]
    assert f"{SHA}@{DIGEST}" in kept.renders[0].text
    assert tuple(workload_images(kept.renders[0].text)) == kept.renders[0].images


async def test_policy_judges_the_kept_render(tmp_path: Path, bare: Path) -> None:
    ctx = context(tmp_path, bare, RecordingRenderer())
    pushed = await run_manifest(ctx, {"publish": {"image.ref": REF}})
    kept = ctx.renders.find(pushed["commit"], STAGING)
    assert kept is not None
    # the same tree, kept with an image the policy refuses: the check reads what was kept
    bad = kept.renders[0].text.replace(f"{SHA}@{DIGEST}", "latest")
    ctx.renders.record(
        kept.commit, kept.tree, STAGING, [Rendered(STAGING, bad, tuple(workload_images(bad)))]
    )

    with pytest.raises(PolicyError) as caught:
        await run_policy(ctx, {})

    assert "myacr.azurecr.io/hello:latest" in str(caught.value)


async def test_policy_renders_a_clone_when_the_tip_moved_on(tmp_path: Path, bare: Path) -> None:
    renderer = RecordingRenderer()
    ctx = context(tmp_path, bare, renderer)
    await run_manifest(ctx, {"publish": {"image.ref": REF}})
    other = tmp_path / "other"
    git("clone", "--quiet", str(bare), str(other))
    (other / "NOTES").write_text("another pipeline's commit\n", encoding="utf-8")
    git("add", "NOTES", cwd=other)
    git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "n", cwd=other)
    git("push", "--quiet", "origin", "HEAD:main", cwd=other)

    outputs = await run_policy(ctx, {})

    assert outputs["rendered"] == "from a clone of the branch tip"
    assert len(renderer.calls) == 2  # the manifest stage's, then the policy stage's own
    assert (
        renderer.calls[1][0]
        .relative_to(tmp_path / "clones")
        .parts[0]
        .startswith("conveyor-policy-")
    )


async def test_policy_judges_what_ctx_render_returned(tmp_path: Path, bare: Path) -> None:
    pinned = "myacr.azurecr.io/hello:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567@sha256:" + "2" * 64
    renderer = RecordingRenderer(
        then=lambda directory: render(directory).replace(pinned, "myacr.azurecr.io/hello:latest")
    )
    ctx = context(tmp_path, bare, renderer)

    with pytest.raises(PolicyError) as caught:
        await run_policy(ctx, {})

    assert "myacr.azurecr.io/hello:latest" in str(caught.value)
    assert len(renderer.calls) == 1
