"""The manifest and policy stages for an environment whose image is pinned in a Component.

A real bare repository seeded with the editor corpus's image-in-component
layout (a ``kind: Component`` that two overlays include) and the host's real
kubectl; the sparse clone lacks the overlays at first and widens to them.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ManifestError, PolicyError
from conveyor.gitops.renders import RenderStore
from conveyor.stages.context import DeliveryContext
from conveyor.stages.manifest import run_manifest, run_policy

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

LAYOUT = Path(__file__).resolve().parents[1] / "resources" / "editor-corpus" / "image-in-component"
SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
DIGEST = "sha256:" + "7" * 64
REF = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"


# the seeds pin commits no source repository has: the order is tested in test_manifest_order.py
UNORDERED = {"CONVEYOR_STAGES__MANIFEST__ALLOW_UNORDERED": "true"}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def seeded(tmp_path: Path, *, users: bool = True, pinned_cache: bool = True) -> Path:
    seed = tmp_path / "seed"
    shutil.copytree(LAYOUT, seed, ignore=shutil.ignore_patterns("case.toml"))
    if not users:
        shutil.rmtree(seed / "overlays")
    if pinned_cache:
        deployment = seed / "base" / "deployment.yaml"
        deployment.write_text(
            deployment.read_text().replace(
                "image: redis", f"image: myacr.azurecr.io/redis:7.4.1@{DIGEST}"
            )
        )
    git("init", "--quiet", "--initial-branch=main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "m", cwd=seed)
    path = tmp_path / "manifests.git"
    git("clone", "--quiet", "--bare", str(seed), str(path))
    return path


def context(tmp_path: Path, bare: Path, policy: str = "") -> DeliveryContext:
    app = tmp_path / "app"
    app.mkdir()
    (app / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "hello"\n\n'
        f'[gitops]\nrepo = "{bare}"\n\n[gitops.environments.staging]\npath = "components/pin"\n'
        f"{policy}",
        encoding="utf-8",
    )
    return DeliveryContext(
        load_config(app / "conveyor.toml", env=UNORDERED), NoEngine(), SHA, tmp_path
    )


async def test_an_image_pinned_in_a_component_is_verified_through_its_overlays(
    tmp_path: Path,
) -> None:
    bare = seeded(tmp_path)
    ctx = context(tmp_path, bare)
    outputs = await run_manifest(ctx, {"publish": {"image.ref": REF}})
    assert outputs["changed"] == "true"
    pinned = git("--git-dir", str(bare), "show", "main:components/pin/kustomization.yaml")
    assert f"digest: {DIGEST}" in pinned
    checked = await run_policy(ctx, {})
    assert checked["violations"] == "0"
    assert checked["rendered"].startswith("by the manifest stage: tree ")
    kept = ctx.renders.find(outputs["commit"], "components/pin")
    assert kept is not None
    # a Component renders nothing alone: what was kept is every overlay including it
    assert [r.source for r in kept.renders] == ["overlays/qa", "overlays/staging"]
    # without this run's render the tip is cloned and rendered: the same verdict
    fresh = await run_policy(dataclasses.replace(ctx, renders=RenderStore()), {})
    assert fresh == {
        "environment": "staging",
        "violations": "0",
        "rendered": "from a clone of the branch tip",
    }


async def test_the_overlays_including_the_component_must_pass_the_policy(
    tmp_path: Path,
) -> None:
    bare = seeded(tmp_path, pinned_cache=False)
    before = git("--git-dir", str(bare), "rev-parse", "main")
    with pytest.raises(PolicyError) as caught:
        await run_manifest(context(tmp_path, bare), {"publish": {"image.ref": REF}})
    assert str(caught.value).startswith(
        "image 'redis' refused: mutable-tag: no tag and no digest means the mutable 'latest' "
        "(in overlays/qa: Deployment/qa/hello container cache)"
    )
    assert git("--git-dir", str(bare), "rev-parse", "main") == before


async def test_a_component_no_overlay_includes_is_refused_and_nothing_is_pushed(
    tmp_path: Path,
) -> None:
    bare = seeded(tmp_path, users=False)
    before = git("--git-dir", str(bare), "rev-parse", "main")
    with pytest.raises(ManifestError) as caught:
        await run_manifest(context(tmp_path, bare), {"publish": {"image.ref": REF}})
    assert str(caught.value).startswith(
        "components/pin: is a Component and no kustomization in the repository includes it"
    )
    assert git("--git-dir", str(bare), "rev-parse", "main") == before
