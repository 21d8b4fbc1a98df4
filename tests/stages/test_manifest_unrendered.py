"""The manifest stage on an overlay with helmCharts: rendered with helm, or refused, or allowed.

A real bare repository seeded with the editor corpus's helm-charts layout (a
local chart), the host's real kubectl, and helm v3.19.0 from
scripts/install-go-tools.sh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import RenderUnavailableError
from conveyor.stages.context import DeliveryContext
from conveyor.stages.manifest import run_manifest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

LAYOUT = Path(__file__).resolve().parents[1] / "resources" / "editor-corpus" / "helm-charts"
CACHE_BIN = Path("/var/cache/conveyor/bin")
SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
DIGEST = "sha256:" + "7" * 64
REF = f"myacr.azurecr.io/web:{SHA}@{DIGEST}"


# the seeds pin commits no source repository has: the order is tested in test_manifest_order.py
UNORDERED = {"CONVEYOR_STAGES__MANIFEST__ALLOW_UNORDERED": "true"}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    shutil.copytree(LAYOUT, seed, ignore=shutil.ignore_patterns("case.toml"))
    git("init", "--quiet", "--initial-branch=main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "m", cwd=seed)
    path = tmp_path / "manifests.git"
    git("clone", "--quiet", "--bare", str(seed), str(path))
    return path


def context(tmp_path: Path, bare: Path, extra: str) -> DeliveryContext:
    app = tmp_path / "app"
    app.mkdir()
    (app / "conveyor.toml").write_text(
        '[app]\nname = "web"\n\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "web"\n\n'
        f'[gitops]\nrepo = "{bare}"\n\n[gitops.environments.staging]\npath = "app"\n{extra}',
        encoding="utf-8",
    )
    return DeliveryContext(
        load_config(app / "conveyor.toml", env=UNORDERED), NoEngine(), SHA, tmp_path
    )


def tip(bare: Path) -> str:
    return git("--git-dir", str(bare), "rev-parse", "main")


async def test_helm_charts_without_enable_helm_are_refused_with_both_ways_out(
    tmp_path: Path, bare: Path
) -> None:
    before = tip(bare)
    with pytest.raises(RenderUnavailableError) as caught:
        await run_manifest(context(tmp_path, bare, ""), {"publish": {"image.ref": REF}})
    assert str(caught.value).startswith(
        "app: uses helmCharts, which kustomize renders only with --enable-helm\n  hint: "
    )
    assert "gitops.environments.<env>.enable_helm = true" in str(caught.value)
    assert "gitops.environments.staging.allow_unrendered = true" in str(caught.value)
    assert tip(bare) == before


async def test_enable_helm_renders_the_chart_before_the_commit(
    tmp_path: Path, bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (CACHE_BIN / "helm").exists():
        pytest.fail(
            f"helm is missing at {CACHE_BIN / 'helm'}: run bash scripts/install-go-tools.sh"
        )
    monkeypatch.setenv("PATH", f"{CACHE_BIN}{os.pathsep}{os.environ['PATH']}")
    outputs = await run_manifest(
        context(tmp_path, bare, "enable_helm = true\n"), {"publish": {"image.ref": REF}}
    )
    assert outputs["changed"] == "true"
    assert outputs["unverified"] == ""
    pinned = git("--git-dir", str(bare), "show", "main:app/kustomization.yaml")
    assert f"digest: {DIGEST}" in pinned


async def test_allow_unrendered_commits_with_a_note_of_what_was_not_verified(
    tmp_path: Path, bare: Path
) -> None:
    outputs = await run_manifest(
        context(tmp_path, bare, "allow_unrendered = true\n"), {"publish": {"image.ref": REF}}
    )
    assert outputs["changed"] == "true"
    assert outputs["unverified"] == (
        "app was not rendered: uses helmCharts, which kustomize renders only with --enable-helm"
    )
    assert outputs["commit"] == tip(bare)
