"""The component's matrix mode run by gitlab-ci-local on examples/monorepo, for real.

The project includes templates/conveyor.yml with ``matrix: true`` and
``images: [api, web]``; a push changes services/api only. gitlab-ci-local
(shell executor) runs both ``conveyor-deliver-image`` jobs as a runner would:
each installs the CLI from a wheel of this checkout and runs ``conveyor run
--engine podman --image NAME`` against the real registry on 127.0.0.1:5000
and a bare manifest repository. The api job builds, scans (the Trivy double,
as in test_gitlab_local.py), smoke-tests, publishes and commits the api pin;
the web job finds nothing changed under services/web and builds, pushes and
commits nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .rules import REPO
from .test_gitlab_local import GITLAB_CI_LOCAL, Project, git

pytestmark = [pytest.mark.podman, pytest.mark.registry]

STAGING = "apps/shop/overlays/staging/kustomization.yaml"


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    assert GITLAB_CI_LOCAL.is_file(), "run scripts/install-node-tools.sh (setup.sh does)"
    # the two jobs run at once: each installs one wheel of this checkout (two
    # pip builds in one source tree would share its build/ directory)
    wheels = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("conveyor_gitops-*.whl")
    return Project(
        tmp_path_factory.mktemp("gitlab-matrix"),
        example="monorepo",
        manifests=REPO / "examples" / "monorepo" / "manifests",
        inputs="      matrix: true\n      images: [api, web]\n",
        package=wheel,
    )


def in_registry(image: str, sha: str) -> bool:
    inspected = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://127.0.0.1:5000/shop/{image}:{sha}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return inspected.returncode == 0


def test_each_image_job_delivers_its_image_only_when_it_changed(
    monorepo: Project, registry_base_image: str
) -> None:
    base = git("rev-parse", "HEAD", cwd=monorepo.app)
    with (monorepo.app / "services" / "api" / "app.py").open("a") as source:
        source.write("# a change of the api only\n")
    git("commit", "-qam", "change the api", cwd=monorepo.app)
    sha = git("rev-parse", "HEAD", cwd=monorepo.app)
    before = monorepo.manifest_head()

    # each job in a copy of the project, as a runner's jobs each have a checkout
    done = monorepo.gitlab_ci_local(
        "conveyor-deliver-image", "--shell-isolation", CI_COMMIT_BEFORE_SHA=base
    )

    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "PASS  conveyor-deliver-image: [api]" in out
    assert "PASS  conveyor-deliver-image: [web]" in out
    # api: built, scanned, smoke-tested, published under the SHA, pinned
    assert "  publish-api: success" in out
    assert in_registry("api", sha)
    # web: its paths did not change; another job would deliver it otherwise
    assert f"  build-web: skipped nothing changed under services/web since {base}" in out
    assert not in_registry("web", sha)
    # one commit, from the api job, pinning the api only
    after = monorepo.manifest_head()
    assert after != before
    assert git("rev-list", "--count", f"{before}..{after}", cwd=monorepo.manifests) == "1"
    assert f"manifest commit: {after}" in out
    diff = git("show", "--format=", after, "--", STAGING, cwd=monorepo.manifests)
    assert "digest: sha256:" in diff
    assert diff.count("+    digest: ") == 1
    body = git("log", "-1", "--format=%B", after, cwd=monorepo.manifests)
    assert f"127.0.0.1:5000/shop/api:{sha}@sha256:" in body
    assert "shop/web" not in body
    # each job keeps its own reports
    artifacts = monorepo.app / ".gitlab-ci-local" / "artifacts"
    summaries = {
        path.parent.parent.name: json.loads(path.read_text())
        for path in artifacts.glob("*/conveyor-reports/summary.json")
    }
    assert len(summaries) == 2, sorted(summaries)
    states = {
        "api" if "api" in name else "web": {row["name"]: row["status"] for row in data["stages"]}
        for name, data in summaries.items()
    }
    assert states["api"]["publish-api"] == "success"
    assert states["api"]["manifest"] == "success"
    assert states["api"]["publish-web"] == "skipped"
    assert states["web"]["build-web"] == "skipped"
    assert states["web"]["publish-api"] == "skipped"
    assert states["web"]["manifest"] == "skipped"
