"""The monorepo example end to end on PodmanEngine: two images, one manifest commit.

Real podman builds both images, a real registry stores them under the source
SHA, a real bare git repository receives the commit and real kustomize
renders it; only Trivy is a double (``tests/doubles/trivy``, as in the
example's own test), and it is asserted to have scanned both images.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from e2e.conftest import EXAMPLES, World, deployed_example, git
from e2e.test_example_pipeline import statuses, summary

STAGING = Path("apps/shop/overlays/staging")
PRODUCTION = Path("apps/shop/overlays/production")
IMAGES = ("api", "web")


@pytest.fixture
def monorepo(tmp_path: Path, registry: str, registry_base_image: str) -> World:
    """examples/monorepo as shipped, committed; its manifests/ as a bare repository."""
    overlays = "apps/shop/overlays/*/kustomization.yaml"
    # both images pinned at the shipped commit in every overlay
    manifests = EXAMPLES / "monorepo" / "manifests"
    return deployed_example(
        tmp_path, registry, "monorepo", manifests=manifests, overlays=overlays, pins=2
    )


def registry_digest(registry: str, image: str, sha: str) -> str:
    """The digest the registry stored for ``shop/<image>:<sha>``."""
    inspected = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry}/shop/{image}:{sha}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert inspected.returncode == 0, inspected.stderr
    inspect = json.loads(inspected.stdout)
    assert inspect["Labels"]["org.opencontainers.image.revision"] == sha
    digest: str = inspect["Digest"]
    return digest


def test_two_images_are_built_scanned_published_and_pinned_in_one_commit(
    monorepo: World,
) -> None:
    before = monorepo.manifest_checkout()
    head_before = git("rev-parse", "HEAD", cwd=before)
    production_before = (before / PRODUCTION / "kustomization.yaml").read_bytes()
    sha = monorepo.commit_app("change both services")

    done = monorepo.run("alpine-310.json")

    assert done.returncode == 0, done.stdout + done.stderr
    data = summary(monorepo.app)
    states = statuses(data)
    per_image = [f"{kind}-{image}" for image in IMAGES for kind in ("build", "scan", "smoke")]
    for stage in [*per_image, "publish-api", "publish-web", "manifest", "policy"]:
        assert states[stage][0] == "success", (stage, states[stage])
    assert "build" not in states  # the [app] shorthand's stages are not there
    # both images under the full SHA tag, each with its own digest, each announced
    digests = {image: registry_digest(monorepo.registry, image, sha) for image in IMAGES}
    assert digests["api"] != digests["web"]
    for image, digest in digests.items():
        assert f"published {monorepo.registry}/shop/{image}:{sha}@{digest}" in done.stdout
        outputs = data["outputs"][f"publish-{image}"]
        assert outputs["image.ref"] == f"{monorepo.registry}/shop/{image}:{sha}@{digest}"
        assert outputs["reused"] == "false"
    # smoke-<image> passed: each service served the source SHA, so GIT_SHA reached each build
    # the Trivy double scanned two tarballs, one per image, each in its own directory
    calls = [json.loads(line)["argv"] for line in monorepo.trivy_log.read_text().splitlines()]
    inputs = sorted(Path(argv[argv.index("--input") + 1]).parent.name for argv in calls)
    assert inputs == ["scan-api", "scan-web"]
    # ONE commit on top of the manifests, touching the staging kustomization only,
    # pinning both images
    after = monorepo.manifest_checkout()
    assert git("rev-list", "--count", f"{head_before}..HEAD", cwd=after) == "1"
    touched = git("show", "--name-only", "--format=", "HEAD", cwd=after).splitlines()
    assert touched == [f"{STAGING}/kustomization.yaml"]
    diff = git("show", "--format=", "HEAD", cwd=after)
    body = git("log", "-1", "--format=%B", cwd=after)
    for image, digest in digests.items():
        assert f"+    digest: {digest}" in diff
        assert f"{monorepo.registry}/shop/{image}:{sha}@{digest}" in body
    assert data["outputs"]["manifest"]["commit"] == git("rev-parse", "HEAD", cwd=after)
    # kustomize renders both pinned images; production is untouched
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(after / STAGING)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KUBECONFIG": os.devnull},
    ).stdout
    for image, digest in digests.items():
        assert f"image: {monorepo.registry}/shop/{image}:{sha}@{digest}" in rendered
    assert (after / PRODUCTION / "kustomization.yaml").read_bytes() == production_before

    # a re-run of the same commit pushes nothing again and commits nothing
    again = monorepo.run("alpine-310.json")

    assert again.returncode == 0, again.stdout + again.stderr
    rerun = summary(monorepo.app)["outputs"]
    assert {rerun[f"publish-{image}"]["reused"] for image in IMAGES} == {"true"}
    assert rerun["manifest"]["changed"] == "false"
    assert {image: registry_digest(monorepo.registry, image, sha) for image in IMAGES} == digests


def test_one_image_failing_its_smoke_test_publishes_neither(monorepo: World) -> None:
    head_before = git("ls-remote", str(monorepo.manifests), "refs/heads/main", cwd=monorepo.tmp)
    web = monorepo.app / "services" / "web" / "app.py"
    web.write_text(web.read_text().replace('os.environ.get("APP_VERSION", "dev")', '"dev"'))
    sha = monorepo.commit_app("web forgets its version")

    done = monorepo.run("alpine-310.json", env={"CONVEYOR_STAGES__SMOKE__DEADLINE": "5s"})

    assert done.returncode == 9, done.stdout + done.stderr
    states = statuses(summary(monorepo.app))
    assert states["smoke-web"][0] == "failed"
    assert states["smoke-api"][0] == "success"
    # api passed every gate of its own, yet is not pushed: a run pushes all images or none
    assert states["publish-api"] == ("skipped", "dependency 'smoke-web' failed")
    assert states["publish-web"] == ("skipped", "dependency 'smoke-web' failed")
    assert states["manifest"][0] == "skipped"
    for image in IMAGES:
        address = f"docker://{monorepo.registry}/shop/{image}:{sha}"
        inspected = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", address],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert inspected.returncode != 0, address
    assert git("ls-remote", str(monorepo.manifests), "refs/heads/main", cwd=monorepo.tmp) == (
        head_before
    )


def test_only_the_changed_image_is_delivered(monorepo: World) -> None:
    base = git("rev-parse", "HEAD", cwd=monorepo.app)
    before = monorepo.manifest_checkout()
    web_pin = (before / STAGING / "kustomization.yaml").read_text()
    api = monorepo.app / "services" / "api" / "app.py"
    api.write_text(api.read_text() + "\n# a change to the api only\n")
    git("add", "-A", cwd=monorepo.app)
    git("commit", "-q", "-m", "api only", cwd=monorepo.app)
    sha = git("rev-parse", "HEAD", cwd=monorepo.app)

    done = monorepo.run("alpine-310.json", "--changed-since", base)

    assert done.returncode == 0, done.stdout + done.stderr
    states = statuses(summary(monorepo.app))
    unchanged = f"nothing changed under services/web since {base}"
    for stage in ("build-web", "scan-web", "smoke-web", "publish-web"):
        assert states[stage] == ("skipped", unchanged), stage
    for stage in ("build-api", "scan-api", "smoke-api", "publish-api", "manifest", "policy"):
        assert states[stage][0] == "success", (stage, states[stage])
    digest = registry_digest(monorepo.registry, "api", sha)
    # one commit pins the api; the web entry keeps its pin, byte for byte
    after = monorepo.manifest_checkout()
    diff = git("show", "--format=", "HEAD", cwd=after)
    assert f"+    digest: {digest}" in diff
    assert diff.count("+    digest:") == 1
    kustomization = (after / STAGING / "kustomization.yaml").read_text()
    web = "  - name: 127.0.0.1:5000/shop/web\n"
    assert kustomization[kustomization.index(web) :] == web_pin[web_pin.index(web) :]

    # nothing of the images changed: nothing is built, pushed or committed
    docs = monorepo.app / "README.md"
    docs.write_text("docs only\n")
    git("add", "-A", cwd=monorepo.app)
    git("commit", "-q", "-m", "docs", cwd=monorepo.app)
    head = git("ls-remote", str(monorepo.manifests), "refs/heads/main", cwd=monorepo.tmp)

    quiet = monorepo.run("alpine-310.json", "--changed-since", sha)

    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    states = statuses(summary(monorepo.app))
    assert states["manifest"] == ("skipped", f"no image changed since {sha}")
    assert states["publish-api"][0] == "skipped"
    assert git("ls-remote", str(monorepo.manifests), "refs/heads/main", cwd=monorepo.tmp) == head
