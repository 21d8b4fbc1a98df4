"""The includable GitLab templates: schema-valid, pinned images, dind wiring, manual promotion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


DAGGER_DOUBLE = """\
import json, os, pathlib, sys
# A stand-in for the dagger CLI (none can run here): record the call, then
# "export" what the module's ci function would return.
pathlib.Path(os.environ["DOUBLE_RECORD"]).write_text(json.dumps(sys.argv[1:]))
path = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--path="))
if os.environ["DOUBLE_SUMMARY"]:
    pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    pathlib.Path(path, "summary.json").write_text(os.environ["DOUBLE_SUMMARY"])
sys.exit(int(os.environ["DOUBLE_EXIT"]))
"""


def run_pipeline_script(
    tmp_path: Path, summary: str, exit_code: int = 0
) -> tuple[int, str, list[str]]:
    """Run the dind job's script with sh and a dagger CLI double on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    dagger = bin_dir / "dagger"
    dagger.write_text(f"#!{sys.executable}\n{DAGGER_DOUBLE}")
    dagger.chmod(0o755)
    record = tmp_path / "argv.json"
    job = parsed(DIND)[".conveyor-pipeline"]
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        **{k: str(v) for k, v in parsed(DIND)["variables"].items()},
        "CI_COMMIT_SHA": "a" * 40,
        "CONVEYOR_GITOPS_TOKEN": "glpat-secret-value",
        "DOUBLE_RECORD": str(record),
        "DOUBLE_SUMMARY": summary,
        "DOUBLE_EXIT": str(exit_code),
    }
    done = subprocess.run(
        ["sh", "-c", "\n".join(job["script"])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, json.loads(record.read_text())


FAILED_SUMMARY = {
    "ok": False,
    "stages": [
        {"name": "test", "status": "success", "reason": ""},
        {"name": "scan", "status": "failed", "reason": "2 CRITICAL findings"},
    ],
}


def test_dagger_job_passes_when_the_summary_says_ok(tmp_path: Path) -> None:
    code, _, argv = run_pipeline_script(tmp_path, json.dumps({"ok": True, "stages": []}))
    assert code == 0
    assert argv[:3] == ["--progress", "plain", "call"]
    assert argv[3:6] == ["ci", "--source=.", f"--sha={'a' * 40}"]
    assert "--git-token=env:CONVEYOR_GITOPS_TOKEN" in argv
    assert "glpat-secret-value" not in " ".join(argv)
    assert argv[-2:] == ["export", "--path=conveyor-reports"]


def test_dagger_job_fails_when_a_stage_failed_though_dagger_call_succeeded(tmp_path: Path) -> None:
    code, out, _ = run_pipeline_script(tmp_path, json.dumps(FAILED_SUMMARY))
    assert code == 1
    assert "the Conveyor pipeline failed: conveyor-reports/summary.json does not say ok" in out
    assert "  scan: failed 2 CRITICAL findings" in out
    assert (tmp_path / "conveyor-reports" / "summary.json").is_file()  # kept as artifact


def test_dagger_job_fails_without_a_summary_and_keeps_dagger_exit_code(tmp_path: Path) -> None:
    code, out, _ = run_pipeline_script(tmp_path, "")
    assert code == 1
    assert "does not say ok" in out
    code, _, _ = run_pipeline_script(tmp_path / "again", json.dumps(FAILED_SUMMARY), exit_code=2)
    assert code == 2


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
