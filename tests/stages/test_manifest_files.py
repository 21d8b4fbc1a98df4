"""The manifest stage pins every configured file in one commit: kustomization, Flux, Helm.

Real git (a bare repository seeded with tests/resources/manifests plus a Flux
release file and a Helm values file) and the host's real kubectl.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ConfigError, ManifestError, PolicyError
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import delivery_pipeline
from conveyor.stages.manifest import run_manifest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
STAGING = "apps/hello/overlays/staging"
SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
DIGEST = "sha256:" + "7" * 64
REF = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"

RELEASE = """\
# Flux HelmRelease for hello; image automation marks the values it may set.
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: hello
spec:
  values:
    image:
      repository: myacr.azurecr.io/hello # {"$imagepolicy": "flux-system:hello:name"}
      tag: "v1" # {"$imagepolicy": "flux-system:hello:tag"}
      digest: "" # {"$imagepolicy": "flux-system:hello:digest"}
"""
VALUES = """\
# values for the staging cluster
replicaCount: 2
backend:
  image:
    repository: myacr.azurecr.io/hello
    tag: v1   # set by the pipeline
  resources: {}
"""


# the seeds pin commits no source repository has: the order is tested in test_manifest_order.py
UNORDERED = {"CONVEYOR_STAGES__MANIFEST__ALLOW_UNORDERED": "true"}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    shutil.copytree(RESOURCES, seed)
    (seed / "clusters" / "staging").mkdir(parents=True)
    (seed / "clusters" / "staging" / "release.yaml").write_text(RELEASE)
    (seed / "charts" / "hello").mkdir(parents=True)
    (seed / "charts" / "hello" / "values-staging.yaml").write_text(VALUES)
    git("init", "--quiet", "--initial-branch=main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "m", cwd=seed)
    path = tmp_path / "manifests.git"
    git("clone", "--quiet", "--bare", str(seed), str(path))
    return path


def context(tmp_path: Path, bare: Path, environment: str) -> DeliveryContext:
    app = tmp_path / "app"
    app.mkdir()
    (app / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "hello"\n\n'
        f'[gitops]\nrepo = "{bare}"\n\n{environment}',
        encoding="utf-8",
    )
    return DeliveryContext(
        load_config(app / "conveyor.toml", env=UNORDERED), NoEngine(), SHA, tmp_path
    )


def on_main(bare: Path, path: str) -> str:
    return git("--git-dir", str(bare), "show", f"main:{path}")


async def test_kustomization_setters_and_values_change_in_one_commit(
    tmp_path: Path, bare: Path
) -> None:
    ctx = context(
        tmp_path,
        bare,
        f'[gitops.environments.staging]\npath = "{STAGING}"\n'
        "flux_setters = [\n"
        '  { file = "clusters/staging/release.yaml", policy = "flux-system:hello" },\n'
        "]\n"
        'helm_values = [{ file = "charts/hello/values-staging.yaml", key = "backend.image" }]\n',
    )
    before = git("--git-dir", str(bare), "rev-parse", "main")

    outputs = await run_manifest(ctx, {"publish": {"image.ref": REF}})

    assert git("--git-dir", str(bare), "rev-parse", "main~1") == before
    changed = git("--git-dir", str(bare), "diff", "--name-only", "main~1", "main").splitlines()
    assert sorted(changed) == [
        f"{STAGING}/kustomization.yaml",
        "charts/hello/values-staging.yaml",
        "clusters/staging/release.yaml",
    ]
    assert outputs["commit"] == git("--git-dir", str(bare), "rev-parse", "main")
    assert f"digest: {DIGEST}" in on_main(bare, f"{STAGING}/kustomization.yaml")
    release = on_main(bare, "clusters/staging/release.yaml")
    assert f'tag: "{SHA}" # {{"$imagepolicy": "flux-system:hello:tag"}}' in release
    assert f'digest: "{DIGEST}" # {{"$imagepolicy": "flux-system:hello:digest"}}' in release
    assert outputs["previous"].startswith("myacr.azurecr.io/hello:0a1b2c3d4e5f6071")
    assert "# Flux HelmRelease for hello" in release
    values = on_main(bare, "charts/hello/values-staging.yaml")
    assert f"    tag: {SHA}   # set by the pipeline" in values
    assert f"    digest: {DIGEST}" in values
    assert values.startswith("# values for the staging cluster\nreplicaCount: 2\n")


async def test_a_helm_only_environment_has_no_policy_stage_and_commits_values(
    tmp_path: Path, bare: Path
) -> None:
    ctx = context(
        tmp_path,
        bare,
        '[gitops.environments.staging]\npath = "charts/hello"\nkustomize = false\n'
        'helm_values = [{ file = "charts/hello/values-staging.yaml", key = "backend.image" }]\n',
    )
    assert "policy" not in delivery_pipeline(ctx).order

    await run_manifest(ctx, {"publish": {"image.ref": REF}})

    changed = git("--git-dir", str(bare), "diff", "--name-only", "main~1", "main").splitlines()
    assert changed == ["charts/hello/values-staging.yaml"]


async def test_setters_that_cannot_hold_the_digest_are_refused_and_nothing_is_pushed(
    tmp_path: Path, bare: Path
) -> None:
    seed_release = RELEASE.replace(
        '      digest: "" # {"$imagepolicy": "flux-system:hello:digest"}\n', ""
    )
    update_file(bare, "clusters/staging/release.yaml", seed_release)
    before = git("--git-dir", str(bare), "rev-parse", "main")
    ctx = context(
        tmp_path,
        bare,
        '[gitops.environments.staging]\npath = "clusters/staging"\nkustomize = false\n'
        "flux_setters = [\n"
        '  { file = "clusters/staging/release.yaml", policy = "flux-system:hello" },\n'
        "]\n",
    )
    with pytest.raises(ManifestError) as caught:
        await run_manifest(ctx, {"publish": {"image.ref": REF}})
    assert str(caught.value).startswith(
        "clusters/staging/release.yaml: the flux-system:hello setters (:name, :tag) cannot "
        "hold the digest, and policy.require_digest is on; nothing was changed"
    )
    assert git("--git-dir", str(bare), "rev-parse", "main") == before


async def test_tag_digest_writes_tag_at_digest_into_the_tag_setter(
    tmp_path: Path, bare: Path
) -> None:
    seed_release = RELEASE.replace(
        '      digest: "" # {"$imagepolicy": "flux-system:hello:digest"}\n', ""
    )
    update_file(bare, "clusters/staging/release.yaml", seed_release)
    ctx = context(
        tmp_path,
        bare,
        '[gitops.environments.staging]\npath = "clusters/staging"\nkustomize = false\n'
        'flux_setters = [{ file = "clusters/staging/release.yaml", '
        'policy = "flux-system:hello", tag_digest = true }]\n',
    )
    outputs = await run_manifest(ctx, {"publish": {"image.ref": REF}})
    # the real previous value, assembled from the :name and :tag markers
    assert outputs["previous"] == "myacr.azurecr.io/hello:v1"
    release = on_main(bare, "clusters/staging/release.yaml")
    assert f'tag: "{SHA}@{DIGEST}" # {{"$imagepolicy": "flux-system:hello:tag"}}' in release


async def test_a_setter_environment_breaking_the_policy_is_refused_before_the_commit(
    tmp_path: Path, bare: Path
) -> None:
    before = git("--git-dir", str(bare), "rev-parse", "main")
    ctx = context(
        tmp_path,
        bare,
        "[policy]\nallowed_registries = ['^other\\.io/.+$']\n\n"
        '[gitops.environments.staging]\npath = "clusters/staging"\nkustomize = false\n'
        "flux_setters = [\n"
        '  { file = "clusters/staging/release.yaml", policy = "flux-system:hello" },\n'
        "]\n",
    )
    with pytest.raises(PolicyError, match="registry-not-allowed") as caught:
        await run_manifest(ctx, {"publish": {"image.ref": REF}})
    assert "(in clusters/staging/release.yaml)" in str(caught.value)
    assert git("--git-dir", str(bare), "rev-parse", "main") == before


def update_file(bare: Path, path: str, text: str) -> None:
    work = bare.parent / "update-work"
    git("clone", "--quiet", str(bare), str(work))
    (work / path).write_text(text)
    git("-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qam", "u", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    shutil.rmtree(work)


def test_an_environment_that_pins_nothing_is_a_configuration_error(
    tmp_path: Path, bare: Path
) -> None:
    with pytest.raises(ConfigError, match="nothing would pin the image"):
        context(tmp_path, bare, '[gitops.environments.staging]\npath = "x"\nkustomize = false\n')
