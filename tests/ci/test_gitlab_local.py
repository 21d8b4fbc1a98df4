"""The GitLab component's jobs run by gitlab-ci-local, as a GitLab runner's shell executor would.

A project includes templates/conveyor.yml (``include: local:`` with inputs,
the same file ``include: component:`` resolves to) for the podman engine.
gitlab-ci-local 4.70.1 (scripts/install-node-tools.sh) evaluates the rules
and runs the jobs on this machine: the before_script installs the CLI from a
wheel built of this checkout (the component's own install path, with
``conveyor-package`` pointing here), then ``conveyor run --engine podman``
runs against the real registry on 127.0.0.1:5000 and a bare manifest
repository. The one double is Trivy (its database cannot be fetched here),
as in scripts/demo.sh.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .rules import REPO

GITLAB_CI_LOCAL = Path("/var/cache/conveyor/node/node_modules/.bin/gitlab-ci-local")
VENV_SITE = next(Path(sys.executable).parent.parent.glob("lib/python3*/site-packages"))
IDENTITY = ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"]

pytestmark = [pytest.mark.podman, pytest.mark.registry]


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


class Project:
    """An application repository that includes the component, and its manifest repository.

    ``example``: the directory under examples/ the application is copied from;
    ``manifests``: the manifest tree made into the bare repository; ``inputs``:
    more component inputs, as YAML lines; ``package``: the ``conveyor-package``
    input (this checkout, built into a wheel by each job's pip).
    """

    def __init__(
        self,
        root: Path,
        example: str = "hello",
        manifests: Path = REPO / "examples" / "manifests",
        inputs: str = "",
        package: Path = REPO,
    ) -> None:
        self.root = root
        self.app = root / "app"
        self.manifests = root / "manifests.git"
        source = root / "manifests-src"
        shutil.copytree(manifests, source)
        git("init", "-q", "-b", "main", cwd=source)
        git("add", "-A", cwd=source)
        git("commit", "-qm", "manifests", cwd=source)
        subprocess.run(
            ["git", "clone", "-q", "--bare", str(source), str(self.manifests)], check=True
        )
        shutil.copytree(
            REPO / "examples" / example,
            self.app,
            ignore=shutil.ignore_patterns(".conveyor", "__pycache__"),
        )
        shutil.copy(REPO / "templates" / "conveyor.yml", self.app / "conveyor-component.yml")
        (self.app / ".gitlab-ci.yml").write_text(
            f"""\
include:
  - local: conveyor-component.yml
    inputs:
      engine: podman
      conveyor-package: {package}
{inputs}
stages: [test, deploy]
""",
            "utf-8",
        )
        git("init", "-q", "-b", "main", cwd=self.app)
        git("remote", "add", "origin", "https://gitlab.example.com/acme/hello.git", cwd=self.app)
        git("add", "-A", cwd=self.app)
        git("commit", "-qm", example, cwd=self.app)
        self.home = root / "home"
        self.home.mkdir()

    def manifest_head(self) -> str:
        return git("rev-parse", "main", cwd=self.manifests)

    def gitlab_ci_local(self, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        trivy_double = REPO / "tests" / "doubles" / "trivy"
        job_variables = {
            "CONVEYOR_GITOPS__REPO": str(self.manifests),
            # the shipped overlays pin a placeholder commit no source holds
            "CONVEYOR_STAGES__MANIFEST__ALLOW_UNORDERED": "true",
            # the host's own store (the image's vfs setting is for a job container)
            "STORAGE_DRIVER": "",
            # no GitHub here to download Trivy from: the double replays a clean report
            "TRIVY_VERSION": "",
            "CONVEYOR_STAGES__SCAN__TRIVY": str(trivy_double),
            "TRIVY_DOUBLE_REPORT": str(REPO / "tests/scan/resources/trivy/alpine-310.json"),
            # the wheel is built and installed for real; its dependencies come from
            # this virtualenv instead of PyPI, to keep the test in seconds
            "PIP_NO_DEPS": "1",
            "PYTHONPATH": str(VENV_SITE),
            **variables,
        }
        command = [str(GITLAB_CI_LOCAL), *args, "--force-shell-executor", "--home", str(self.home)]
        for key, value in job_variables.items():
            command += ["--variable", f"{key}={value}"]
        return subprocess.run(
            command,
            cwd=self.app,
            env={**os.environ, "HOME": str(self.home)},
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    def jobs(self, **variables: str) -> dict[str, Any]:
        listed = self.gitlab_ci_local("--list-json", **variables)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        # the list is the last thing printed, after any warnings
        start = re.search(r"^\[", listed.stdout, re.MULTILINE)
        assert start is not None, listed.stdout
        listed_jobs = json.loads(listed.stdout[start.start() :])
        return {job["name"]: job for job in listed_jobs if job.get("when") != "never"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    assert GITLAB_CI_LOCAL.is_file(), "run scripts/install-node-tools.sh (setup.sh does)"
    return Project(tmp_path_factory.mktemp("gitlab"))


def test_the_default_branch_delivers_and_offers_a_manual_promotion(project: Project) -> None:
    jobs = project.jobs()
    assert set(jobs) == {"conveyor-deliver", "conveyor-promote"}
    assert jobs["conveyor-promote"]["when"] == "manual"
    assert jobs["conveyor-promote"]["allow_failure"] is False


@pytest.mark.parametrize(
    "variables",
    [
        {"CI_COMMIT_BRANCH": "feature", "CI_COMMIT_REF_NAME": "feature"},
        {"CI_PIPELINE_SOURCE": "merge_request_event"},
    ],
    ids=["feature-branch", "merge-request"],
)
def test_feature_branches_and_merge_requests_only_validate(
    project: Project, variables: dict[str, str]
) -> None:
    assert set(project.jobs(**variables)) == {"conveyor-validate"}


def test_a_branch_with_an_open_merge_request_leaves_it_to_that_pipeline(project: Project) -> None:
    jobs = project.jobs(CI_COMMIT_BRANCH="feature", CI_OPEN_MERGE_REQUESTS="acme/hello!1")
    assert jobs == {}


def test_a_tag_pipeline_runs_nothing(project: Project) -> None:
    assert project.jobs(CI_COMMIT_BRANCH="", CI_COMMIT_TAG="v1.0.0") == {}


def registry_has(sha: str) -> bool:
    inspected = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://127.0.0.1:5000/hello:{sha}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return inspected.returncode == 0


def test_the_delivery_job_publishes_and_commits_the_digest(project: Project) -> None:
    before = project.manifest_head()
    sha = git("rev-parse", "HEAD", cwd=project.app)
    done = project.gitlab_ci_local("conveyor-deliver")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "PASS  conveyor-deliver" in out
    assert f"of {sha}: passed" in out
    assert "  publish: success" in out
    assert registry_has(sha)
    after = project.manifest_head()
    assert after != before
    assert f"manifest commit: {after}" in out
    staging = git(
        "show", "main:apps/hello/overlays/staging/kustomization.yaml", cwd=project.manifests
    )
    assert "digest: sha256:" in staging
    artifacts = project.app / ".gitlab-ci-local" / "artifacts" / "conveyor-deliver"
    reports = artifacts / "conveyor-reports"
    assert (reports / "summary.json").is_file()
    assert list((reports / "test").glob("*.xml"))
    scanning = json.loads((reports / "gl-container-scanning-report.json").read_text())
    assert scanning["scan"]["type"] == "container_scanning"


def test_the_validation_job_neither_publishes_nor_commits(project: Project) -> None:
    git("checkout", "-q", "-b", "feature", cwd=project.app)
    (project.app / "CHANGE").write_text("a feature\n")
    git("add", "CHANGE", cwd=project.app)  # not the delivery job's leftovers
    git("commit", "-qm", "a feature", cwd=project.app)
    sha = git("rev-parse", "HEAD", cwd=project.app)
    before = project.manifest_head()
    try:
        done = project.gitlab_ci_local(
            "conveyor-validate", CI_COMMIT_BRANCH="feature", CI_COMMIT_REF_NAME="feature"
        )
    finally:
        git("checkout", "-q", "main", cwd=project.app)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "PASS  conveyor-validate" in out
    assert "validation: every stage publish waits for; skipped: publish and what needs it" in out
    assert f"of {sha}: passed" in out
    assert "  smoke: success" in out
    # the example's own gates run on a feature branch too
    assert "  lint: success" in out
    assert "  integration: success" in out
    assert "  publish: skipped" in out
    assert not registry_has(sha)
    assert project.manifest_head() == before
