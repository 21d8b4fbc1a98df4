"""The project's GitHub workflows: schema-valid, pinned, least privilege, promotion by PR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .rules import (
    REPO,
    github_run_scripts,
    id_token_problems,
    inline_secret_problems,
    load_yaml,
    permission_problems,
    promotion_problems,
    unpinned_uses,
    validate_schema,
)

WORKFLOWS = REPO / ".github" / "workflows"
REUSABLE = WORKFLOWS / "conveyor.yml"
PROJECT = WORKFLOWS / "ci.yml"
ALL = sorted(WORKFLOWS.glob("*.yml"))


def parsed(path: Path) -> Any:
    return load_yaml(path.read_text("utf-8"))


def test_the_expected_workflows_exist() -> None:
    assert [p.name for p in ALL] == ["ci.yml", "conveyor.yml"]


def test_every_workflow_matches_the_github_workflow_schema() -> None:
    checked = validate_schema("vendor.github-workflows", ALL)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok -- validation done" in checked.stdout


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_action_is_pinned(path: Path) -> None:
    assert unpinned_uses(parsed(path)) == []


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_permissions_are_minimal_and_explicit(path: Path) -> None:
    assert permission_problems(parsed(path)) == []


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_secret_is_written_inline(path: Path) -> None:
    assert inline_secret_problems(parsed(path)) == []


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_id_token_write_only_where_oidc_login_happens(path: Path) -> None:
    resolve = {"./.github/workflows/conveyor.yml": parsed(REUSABLE)}
    assert id_token_problems(parsed(path), resolve) == []


def test_reusable_workflow_is_called_with_its_inputs_and_secrets() -> None:
    workflow = parsed(REUSABLE)
    call = workflow["on"]["workflow_call"]
    assert {
        "config",
        "environment",
        "engine",
        "python-version",
        "registry-is-acr",
        "acr-name",
        "run-promotion",
        "module",
        "dagger-version",
    } <= set(call["inputs"])
    assert call["inputs"]["registry-is-acr"]["type"] == "boolean"
    assert call["inputs"]["run-promotion"]["default"] is False
    assert {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "GITOPS_TOKEN"} <= set(
        call["secrets"]
    )
    assert all(secret["required"] is False for secret in call["secrets"].values())


def test_pipeline_job_runs_dagger_call_ci_with_the_official_action() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    dagger = [s for s in job["steps"] if str(s.get("uses", "")).startswith("dagger/")]
    assert len(dagger) == 1
    step = dagger[0]
    assert step["uses"] == "dagger/dagger-for-github@v8"
    assert step["with"]["verb"] == "call"
    args = step["with"]["args"].split()
    assert args[:5] == [
        "ci",
        "--source=.",
        "--sha=${{",
        "github.sha",
        "}}",
    ]
    assert "--config=${{ inputs.config }}" in step["with"]["args"]
    assert "'--git-token=env:CONVEYOR_GITOPS_TOKEN'" in step["with"]["args"]
    assert step["with"]["args"].endswith("export --path=${{ inputs.reports-dir }}")
    assert step["env"]["CONVEYOR_GITOPS_TOKEN"] == "${{ secrets.GITOPS_TOKEN }}"
    assert step["with"]["version"] == "${{ inputs.dagger-version }}"


def test_acr_login_is_oidc_then_az_acr_login_and_only_for_acr() -> None:
    steps = parsed(REUSABLE)["jobs"]["pipeline"]["steps"]
    login = next(s for s in steps if str(s.get("uses", "")).startswith("azure/login@"))
    assert login["if"] == "inputs.registry-is-acr"
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    acr = next(s for s in steps if "az acr login" in s.get("run", ""))
    assert acr["if"] == "inputs.registry-is-acr"
    assert steps.index(login) < steps.index(acr)
    # the input reaches the shell through env, never by ${{ }} inside run:
    assert "${{" not in acr["run"]
    assert acr["env"]["ACR_NAME"] == "${{ inputs.acr-name }}"


def test_no_run_script_interpolates_expressions() -> None:
    for path in ALL:
        for name, job in parsed(path)["jobs"].items():
            assert "${{" not in github_run_scripts(job), f"{path.name}: jobs.{name}"


def test_scan_sarif_is_uploaded_with_security_events_write() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    upload = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("github/codeql-action/")
    )
    assert upload["uses"] == "github/codeql-action/upload-sarif@v4"
    assert upload["with"]["sarif_file"] == (
        "${{ inputs.working-directory }}/${{ inputs.reports-dir }}"
    )
    assert upload["if"].startswith("always()")
    assert "/**/*.sarif" in upload["if"]
    assert job["permissions"]["security-events"] == "write"


def run_summary(tmp_path: Path, reports: dict[str, str]) -> tuple[str, str]:
    """Run the summary step's embedded Python for real on a reports directory."""
    step = next(
        s for s in parsed(REUSABLE)["jobs"]["pipeline"]["steps"] if s.get("id") == "summary"
    )
    assert (step["if"], step["shell"]) == ("always()", "python")
    directory = tmp_path / "conveyor-reports"
    for relative, text in reports.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    env = {
        "CONVEYOR_REPORTS": str(directory),
        "ENGINE": "dagger",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
    }
    subprocess.run(
        [sys.executable, "-c", step["run"]], env=env, cwd=tmp_path, check=True, timeout=60
    )
    return summary.read_text(), output.read_text()


JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest" tests="3" failures="1" errors="0" skipped="1">
<testcase classname="tests.test_app" name="test_ok"/>
<testcase classname="tests.test_app" name="test_bad"><failure message="no"/></testcase>
<testcase classname="tests.test_app" name="test_skip"><skipped/></testcase>
</testsuite></testsuites>
"""


def summary_json(ok: bool) -> dict[str, object]:
    """A summary.json as the report stage writes it (conveyor.stages.delivery.write_summary)."""
    return {
        "sha": "0" * 40,
        "run_id": "20260101T000000Z-abc123",
        "ok": ok,
        "stages": [
            {"name": "test", "status": "success", "reason": "", "duration": 12.34, "attempts": 1},
            {"name": "publish", "status": "success", "reason": "", "duration": 3.0, "attempts": 2},
            {
                "name": "manifest",
                "status": "success" if ok else "failed",
                "reason": "" if ok else "push rejected | protected branch",
                "duration": 1.5,
                "attempts": 1,
            },
        ],
        "outputs": {
            "test": {"tests": "3", "failures": "1"},
            "publish": {
                "image.ref": "myacr.azurecr.io/hello:abc@sha256:" + "1" * 64,
                "image.digest": "sha256:" + "1" * 64,
            },
            **(
                {
                    "manifest": {
                        "commit": "abc123",
                        "commit_url": "https://example.com/m/commit/abc123",
                    }
                }
                if ok
                else {}
            ),
        },
    }


def test_job_summary_shows_stages_image_commit_and_tests(tmp_path: Path) -> None:
    summary, output = run_summary(
        tmp_path,
        {
            "summary.json": json.dumps(summary_json(ok=True)),
            "test/junit.xml": JUNIT,
            "scan/trivy.json": "{}",
        },
    )
    assert "| stage | status | time | attempts | reason / outputs |" in summary
    assert "| test | success | 12.3s | 1 | failures=1, tests=3 |" in summary
    assert "| publish | success | 3.0s | 2 | image.digest=sha256:" in summary
    assert "Result: passed" in summary
    assert f"Image: `myacr.azurecr.io/hello:abc@sha256:{'1' * 64}`" in summary
    assert "Manifest commit: https://example.com/m/commit/abc123" in summary
    assert "### Unit tests (test/junit.xml)" in summary
    assert "3 tests, 1 failures, 0 errors, 1 skipped" in summary
    assert "- :x: `tests.test_app.test_bad`" in summary
    assert output == (
        f"image=myacr.azurecr.io/hello:abc@sha256:{'1' * 64}\n"
        "manifest-commit=https://example.com/m/commit/abc123\n"
        "ok=true\n"
    )


def test_job_summary_of_a_failed_run_shows_the_reason_and_says_not_ok(tmp_path: Path) -> None:
    summary, output = run_summary(tmp_path, {"summary.json": json.dumps(summary_json(ok=False))})
    assert "| manifest | failed | 1.5s | 1 | push rejected \\| protected branch |" in summary
    assert "Result: **failed**" in summary
    assert output.endswith("ok=false\n")


def test_job_summary_without_reports_says_so(tmp_path: Path) -> None:
    summary, output = run_summary(tmp_path, {})
    assert "No stage results:" in summary
    assert "summary.json was not written." in summary
    assert output == "image=\nmanifest-commit=\nok=false\n"


def test_pipeline_failure_fails_the_job_after_the_reports_are_kept() -> None:
    steps = parsed(REUSABLE)["jobs"]["pipeline"]["steps"]
    names = [s.get("id") or s.get("name") for s in steps]
    last = steps[-1]
    # `dagger call ci` succeeds when a stage fails (it returns the reports):
    # summary.json's verdict, passed on by the summary step, fails the job
    assert last["if"] == (
        "always() && (steps.dagger.outcome == 'failure' || steps.podman.outcome == 'failure' "
        "|| steps.summary.outputs.ok != 'true')"
    )
    assert "exit 1" in last["run"]
    assert names.index("summary") < len(steps) - 1
    keep = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert keep["if"] == "always()"
    assert names.index("summary") < steps.index(keep) < len(steps) - 1


def test_promotion_is_a_pull_request_behind_the_production_environment() -> None:
    workflow = parsed(REUSABLE)
    assert promotion_problems(workflow) == []
    promote = workflow["jobs"]["promote"]
    assert promote["needs"] == "pipeline"
    assert promote["if"] == "inputs.run-promotion && needs.pipeline.result == 'success'"
    assert "id-token" not in promote["permissions"]


def test_podman_engine_runs_conveyor_run() -> None:
    steps = parsed(REUSABLE)["jobs"]["pipeline"]["steps"]
    podman = next(s for s in steps if s.get("id") == "podman")
    assert podman["if"] == "inputs.engine == 'podman'"
    assert 'conveyor run --engine podman --config "$CONVEYOR_CONFIG"' in podman["run"]


def test_project_workflow_runs_the_same_command_as_local() -> None:
    workflow = parsed(PROJECT)
    test_job = workflow["jobs"]["test"]
    assert test_job["runs-on"] == "ubuntu-latest"
    assert "bash .ci/run" in github_run_scripts(test_job)
    assert test_job["permissions"] == {"contents": "read"}


def test_project_workflow_calls_the_reusable_workflow_for_the_example() -> None:
    example = parsed(PROJECT)["jobs"]["example"]
    assert example["uses"] == "./.github/workflows/conveyor.yml"
    assert (REPO / example["uses"]).is_file()
    # a caller must grant what the called jobs ask for, and no more
    called = parsed(REUSABLE)["jobs"]["pipeline"]["permissions"]
    assert example["permissions"] == called
