"""What ``conveyor init`` generates passes the same checks as the files in this repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import load_config
from conveyor.scaffold.generator import GITLAB_COMPONENT, REUSABLE_WORKFLOW, UPSTREAM_REF

from .conftest import GitRepo
from .rules import (
    REPO,
    component_parts,
    id_token_problems,
    inline_secret_problems,
    load_yaml,
    permission_problems,
    render_component,
    unpinned_uses,
    validate_schema,
)

CONVEYOR = Path(sys.executable).with_name("conveyor")
APP = {"Dockerfile": "FROM scratch\n", "tests/test_app.py": "def test_ok():\n    pass\n"}
ORIGIN = "https://github.com/acme/hello.git"


def init(repo: Path, ci: str) -> subprocess.CompletedProcess[str]:
    """The real console script, as a user runs it."""
    return subprocess.run(
        [str(CONVEYOR), "init", "--ci", ci],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_generated_github_workflow_is_valid_pinned_and_least_privilege(git_repo: GitRepo) -> None:
    repo = git_repo("hello", APP, origin=ORIGIN)
    done = init(repo, "github")
    assert done.returncode == 0, done.stderr
    workflow_path = repo / ".github" / "workflows" / "conveyor.yml"
    checked = validate_schema("vendor.github-workflows", [workflow_path])
    assert checked.returncode == 0, checked.stdout + checked.stderr

    workflow: Any = load_yaml(workflow_path.read_text("utf-8"))
    # a checkout is not a release build: the tag, and a TODO to pin its commit
    assert unpinned_uses(workflow) == [
        f"jobs.conveyor: {REUSABLE_WORKFLOW}@{UPSTREAM_REF} is not pinned to a commit SHA"
    ]
    assert "replace it with the tag's commit SHA (git ls-remote" in done.stdout
    assert permission_problems(workflow) == []
    assert inline_secret_problems(workflow) == []
    # the generated caller points at this repository's reusable workflow
    (job,) = workflow["jobs"].values()
    reference = job["uses"]
    assert reference.split("@")[0].endswith("/.github/workflows/conveyor.yml")
    reusable = load_yaml((REPO / ".github" / "workflows" / "conveyor.yml").read_text("utf-8"))
    assert id_token_problems(workflow, {reference: reusable}) == []
    assert set(job["with"]) <= set(reusable["on"]["workflow_call"]["inputs"])
    assert set(job["secrets"]) <= set(reusable["on"]["workflow_call"]["secrets"])
    assert job["permissions"] == reusable["jobs"]["pipeline"]["permissions"]
    assert workflow["on"]["push"]["branches"] == ["main"]
    # the CLI runs on the runner under `dagger run`: no Dagger module to name
    assert "module" not in job["with"]
    assert "dagger run conveyor run" in workflow_path.read_text("utf-8")


def test_generated_gitlab_file_is_valid_and_includes_the_component(git_repo: GitRepo) -> None:
    repo = git_repo("hello", APP, origin="git@gitlab.com:acme/team/hello.git")
    done = init(repo, "gitlab")
    assert done.returncode == 0, done.stderr
    path = repo / ".gitlab-ci.yml"
    checked = validate_schema("vendor.gitlab-ci", [path])
    assert checked.returncode == 0, checked.stdout + checked.stderr

    document: Any = load_yaml(path.read_text("utf-8"))
    assert inline_secret_problems(document) == []
    (include,) = document["include"]
    # from a checkout the tag, with a TODO to pin the commit (a release writes the commit)
    assert include["component"] == f"{GITLAB_COMPONENT}@{UPSTREAM_REF}"
    assert "$CI_SERVER_FQDN/conveyor-ci/conveyor/conveyor@" in include["component"]
    component_text = (REPO / "templates" / "conveyor.yml").read_text("utf-8")
    spec, _ = component_parts(component_text)
    assert set(include["inputs"]) <= set(spec["inputs"])
    jobs = render_component(component_text, **include["inputs"])
    for job in ("conveyor-validate", "conveyor-deliver", "conveyor-promote"):
        assert jobs[job]["stage"] in document["stages"]
    # nothing global: the component's jobs take everything from their inputs
    assert "variables" not in document
    assert "dagger run conveyor run" in path.read_text("utf-8")


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_generated_config_loads(git_repo: GitRepo, ci: str) -> None:
    repo = git_repo("hello", APP, origin=ORIGIN)
    assert init(repo, ci).returncode == 0
    config = load_config(repo / "conveyor.toml", env={})
    assert config.app.name == "hello"
    assert config.gitops is not None
    assert config.gitops.forge is not None
    assert config.gitops.forge.kind == ci
