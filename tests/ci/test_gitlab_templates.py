"""The includable GitLab templates: schema-valid, pinned images, dind wiring, manual promotion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .rules import (
    REPO,
    gitlab_image_problems,
    gitlab_promotion_problems,
    gitlab_scripts,
    inline_secret_problems,
    load_yaml,
    validate_schema,
)

TEMPLATES = REPO / "ci" / "gitlab"
DIND = TEMPLATES / "conveyor.gitlab-ci.yml"
PODMAN = TEMPLATES / "conveyor-podman.gitlab-ci.yml"
ALL = [DIND, PODMAN]


def parsed(path: Path) -> Any:
    return load_yaml(path.read_text("utf-8"))


def test_the_expected_templates_exist() -> None:
    assert sorted(TEMPLATES.glob("*.yml")) == sorted(ALL)


def test_templates_match_the_gitlab_ci_schema() -> None:
    checked = validate_schema("vendor.gitlab-ci", ALL)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_job_is_hidden_so_including_runs_nothing_by_itself(path: Path) -> None:
    jobs = [k for k, v in parsed(path).items() if isinstance(v, dict) and k != "variables"]
    assert jobs
    assert all(name.startswith(".") for name in jobs), jobs


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_images_are_pinned(path: Path) -> None:
    assert gitlab_image_problems(parsed(path)) == []


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_secret_is_written_inline(path: Path) -> None:
    document = parsed(path)
    assert inline_secret_problems(document) == []
    assert "CONVEYOR_GITOPS_TOKEN" not in document["variables"]
    assert "CONVEYOR_REGISTRY_PASSWORD" not in document["variables"]


@pytest.mark.parametrize(
    ("path", "job"),
    [(DIND, ".conveyor-promote"), (PODMAN, ".conveyor-podman-promote")],
    ids=["dind", "podman"],
)
def test_promotion_is_manual_on_the_default_branch_in_production(path: Path, job: str) -> None:
    assert gitlab_promotion_problems(job, parsed(path)[job]) == []


def test_dagger_job_has_the_docker_in_docker_service_with_tls() -> None:
    document = parsed(DIND)
    job = document[".conveyor-pipeline"]
    assert job["services"] == [{"name": "docker:27-dind", "alias": "docker"}]
    assert job["image"] == "docker:27"
    assert job["variables"] == {
        "DOCKER_HOST": "tcp://docker:2376",
        "DOCKER_TLS_CERTDIR": "/certs",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs/client",
    }
    script = gitlab_scripts(job)
    assert 'DAGGER_VERSION="$DAGGER_VERSION"' in script
    assert 'call ${CONVEYOR_MODULE:+-m "$CONVEYOR_MODULE"} ci' in script
    assert '--sha="$CI_COMMIT_SHA"' in script
    assert "${CONVEYOR_GITOPS_TOKEN:+--git-token=env:CONVEYOR_GITOPS_TOKEN}" in script
    assert 'export --path="$CONVEYOR_REPORTS"' in script
    assert document["variables"]["DAGGER_VERSION"] == "0.21.11"


@pytest.mark.parametrize(
    ("path", "job"),
    [(DIND, ".conveyor-pipeline"), (PODMAN, ".conveyor-podman-pipeline")],
    ids=["dind", "podman"],
)
def test_pipeline_publishes_junit_and_keeps_the_scan_as_artifact(path: Path, job: str) -> None:
    document = parsed(path)
    artifacts = document[job].get("artifacts") or document[document[job]["extends"]]["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"] == {"junit": "$CONVEYOR_REPORTS/test/**/*.xml"}
    assert "$CONVEYOR_REPORTS/" in artifacts["paths"]
    # container_scanning takes only GitLab's own report format, which is not written
    assert "container_scanning" not in artifacts["reports"]
    assert "container_scanning" in path.read_text("utf-8")  # ... and the file says so


@pytest.mark.parametrize(
    ("path", "job"),
    [(DIND, ".conveyor-pipeline"), (PODMAN, ".conveyor-podman-pipeline")],
    ids=["dind", "podman"],
)
def test_azure_login_uses_the_oidc_id_token_and_no_client_secret(path: Path, job: str) -> None:
    document = parsed(path)
    pipeline = document[job]
    assert pipeline["id_tokens"] == {"AZURE_ID_TOKEN": {"aud": "api://AzureADTokenExchange"}}
    script = gitlab_scripts(pipeline)
    assert "client_assertion=${AZURE_ID_TOKEN}" in script
    assert "client_secret" not in script
    assert "--password-stdin" in script  # the ACR token never appears on a command line


def test_podman_variant_needs_no_privileged_container() -> None:
    job = parsed(PODMAN)[".conveyor-podman-pipeline"]
    assert "services" not in job
    text = PODMAN.read_text("utf-8")
    assert "privileged" not in text.replace("privileged containers", "")
    assert "conveyor run --engine podman" in gitlab_scripts(job)
    assert job["variables"]["BUILDAH_ISOLATION"] == "chroot"
