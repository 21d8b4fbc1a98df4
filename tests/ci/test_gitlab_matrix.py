"""The GitLab component's matrix mode: one validate or deliver job per image of ``images``.

GitLab fixes a ``parallel:matrix`` when it creates the pipeline, so the
images come from the ``images`` input; each job runs ``conveyor run --image
NAME`` and the run's own change detection skips an unchanged image. The
structure is checked on the content as GitLab includes it, the rules by
gitlab-ci-local, and the run script runs for real (real git, the real CLI,
podman).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAILING_IMAGES_APP, GitRepo
from .rules import REPO, component_parts, validate_schema
from .test_gitlab_templates import ENGINES, TEXT, rendered, run_script

GITLAB_CI_LOCAL = Path("/var/cache/conveyor/node/node_modules/.bin/gitlab-ci-local")
IMAGES = ["api", "web"]
MATRIX = {"matrix": True, "images": IMAGES}


def test_matrix_and_images_are_inputs_off_by_default() -> None:
    inputs = component_parts(TEXT)[0]["inputs"]
    assert inputs["matrix"]["type"] == "boolean"
    assert inputs["matrix"]["default"] is False
    assert inputs["images"]["type"] == "array"
    # not given: one job with an empty name, which says what to set (below)
    assert inputs["images"]["default"] == [""]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_matrix_content_matches_the_gitlab_ci_schema(engine: str, tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yml"
    path.write_text(json.dumps(rendered(engine=engine, **MATRIX)), "utf-8")
    checked = validate_schema("vendor.gitlab-ci", [path])
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_one_job_per_image_of_the_input_with_the_shared_run(engine: str) -> None:
    document = rendered(engine=engine, **MATRIX)
    assert document[".conveyor-image-matrix"] == {
        "parallel": {"matrix": [{"CONVEYOR_IMAGE_NAME": IMAGES}]}
    }
    for name in ("conveyor-validate-image", "conveyor-deliver-image"):
        job = document[name]
        assert job["extends"] == [f".conveyor-{engine}", ".conveyor-run", ".conveyor-image-matrix"]
        assert job["stage"] == "test"
        assert job["variables"]["CONVEYOR_MATRIX"] == "true"
    # the one-job forms are off: their first rule now matches
    assert document[".conveyor-run"]["variables"]["CONVEYOR_MATRIX_INPUT"] == "matrix true"
    for name in ("conveyor-validate", "conveyor-deliver"):
        assert document[name]["rules"][0] == {
            "if": '$CONVEYOR_MATRIX_INPUT == "matrix true"',
            "when": "never",
        }


def test_each_image_delivers_on_the_default_branch_one_at_a_time() -> None:
    job = rendered(environment="qa", **MATRIX)["conveyor-deliver-image"]
    # GitLab expands the job's matrix variable in the group's name
    assert job["resource_group"] == "conveyor-qa-$CONVEYOR_IMAGE_NAME"
    assert job["variables"] == {"CONVEYOR_MATRIX": "true"}
    assert job["rules"] == [
        {"if": '$CONVEYOR_MATRIX_INPUT != "matrix true"', "when": "never"},
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "never"},
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"},
    ]
    validate = rendered(**MATRIX)["conveyor-validate-image"]
    assert validate["variables"]["CONVEYOR_VALIDATE_STAGES"] == "gates"
    assert validate["variables"]["CONVEYOR_VALIDATE"] == "true"
    assert validate["rules"][1:] == rendered()["conveyor-validate"]["rules"][1:]
    # without matrix the image jobs are never created: the variable says "matrix false"
    assert rendered()[".conveyor-run"]["variables"]["CONVEYOR_MATRIX_INPUT"] == "matrix false"


# --- the run script of one image's job, for real ------------------------------------


def test_an_image_job_builds_its_image_and_leaves_the_other_to_its_job(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("shop", FAILING_IMAGES_APP)
    done = run_script("podman", "conveyor-deliver-image", repo, tmp_path, CONVEYOR_IMAGE_NAME="api")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # api's build fails, as the app means it to
    assert "  build-api: failed " in out
    assert "  build-web: skipped another job delivers it (this one: --image api)" in out
    summary = json.loads((repo / "conveyor-reports" / "summary.json").read_text())
    assert summary["ok"] is False


def test_an_image_job_validates_its_kind_of_stages(git_repo: GitRepo, tmp_path: Path) -> None:
    repo = git_repo("shop", FAILING_IMAGES_APP)
    done = run_script(
        "podman", "conveyor-validate-image", repo, tmp_path, CONVEYOR_IMAGE_NAME="web"
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    # build-web, scan-web ... are gates: validated; every publish is skipped
    assert "validation: every stage publish waits for; skipped: publish and what needs it" in out
    assert "  build-web: failed " in out
    assert "  publish-web: skipped a validation run (--validate gates) publishes nothing" in out


def test_matrix_without_the_images_input_says_what_to_set(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("shop", FAILING_IMAGES_APP)
    done = run_script("podman", "conveyor-deliver-image", repo, tmp_path, CONVEYOR_IMAGE_NAME="")
    assert done.returncode == 2  # a usage error
    assert "matrix: true needs the images input" in done.stdout
    assert not (repo / ".conveyor").exists()  # nothing ran


def test_an_image_not_in_the_configuration_is_a_usage_error(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("shop", FAILING_IMAGES_APP)
    done = run_script(
        "podman", "conveyor-deliver-image", repo, tmp_path, CONVEYOR_IMAGE_NAME="worker"
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "'worker' is not an image of this pipeline (images: api, web)" in out


# --- the rules, evaluated by gitlab-ci-local -----------------------------------------------


def listed_jobs(project: Path, home: Path, **variables: str) -> dict[str, Any]:
    command = [str(GITLAB_CI_LOCAL), "--list-json", "--home", str(home)]
    for key, value in variables.items():
        command += ["--variable", f"{key}={value}"]
    done = subprocess.run(
        command, cwd=project, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    start = re.search(r"^\[", done.stdout, re.MULTILINE)
    assert start is not None, done.stdout
    jobs = json.loads(done.stdout[start.start() :])
    return {job["name"]: job for job in jobs if job.get("when") != "never"}


@pytest.fixture(scope="module")
def matrix_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project that includes the component with matrix: true and two images."""
    assert GITLAB_CI_LOCAL.is_file(), "run scripts/install-node-tools.sh (setup.sh does)"
    root = tmp_path_factory.mktemp("gitlab-matrix")
    (root / "conveyor-component.yml").write_text(TEXT, "utf-8")
    (root / ".gitlab-ci.yml").write_text(
        """\
include:
  - local: conveyor-component.yml
    inputs:
      engine: podman
      matrix: true
      images: [api, web]

stages: [test, deploy]
""",
        "utf-8",
    )
    for relative, text in FAILING_IMAGES_APP.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, "utf-8")
    identity = ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", "https://gitlab.example.com/acme/shop.git"],
        ["add", "-A"],
        ["commit", "-qm", "shop"],
    ):
        subprocess.run(["git", *identity, *args], cwd=root, check=True, timeout=60)
    (root / "home").mkdir()
    return root


def test_the_default_branch_delivers_each_image_in_its_own_job(matrix_project: Path) -> None:
    jobs = listed_jobs(matrix_project, matrix_project / "home")
    assert set(jobs) == {
        "conveyor-deliver-image: [api]",
        "conveyor-deliver-image: [web]",
        "conveyor-promote",
    }
    assert jobs["conveyor-promote"]["when"] == "manual"


@pytest.mark.parametrize(
    "variables",
    [
        {"CI_COMMIT_BRANCH": "feature", "CI_COMMIT_REF_NAME": "feature"},
        {"CI_PIPELINE_SOURCE": "merge_request_event"},
    ],
    ids=["feature-branch", "merge-request"],
)
def test_feature_branches_and_merge_requests_validate_each_image(
    matrix_project: Path, variables: dict[str, str]
) -> None:
    jobs = listed_jobs(matrix_project, matrix_project / "home", **variables)
    assert set(jobs) == {"conveyor-validate-image: [api]", "conveyor-validate-image: [web]"}


def test_a_tag_pipeline_runs_no_image_job(matrix_project: Path) -> None:
    assert (
        listed_jobs(
            matrix_project, matrix_project / "home", CI_COMMIT_BRANCH="", CI_COMMIT_TAG="v1"
        )
        == {}
    )


def test_docs_describe_the_matrix_mode_of_both() -> None:
    text = (REPO / "docs" / "ci.md").read_text("utf-8")
    section = text.split("\n## Monorepos: one job per image\n", 1)[1].split("\n## ", 1)[0]
    for fact in (
        "matrix: true",
        "conveyor plan --format github-matrix",
        "conveyor run --image",
        "images: [api, web]",
        "conveyor-deliver-image",
        "resource_group",
    ):
        assert fact in section, fact
