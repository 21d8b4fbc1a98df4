"""The project's GitHub workflows: schema-valid, pinned, least privilege, promotion by PR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor import __version__

from .rules import (
    REPO,
    github_run_scripts,
    id_token_problems,
    inline_secret_problems,
    load_yaml,
    missing_version_comments,
    permission_problems,
    promotion_problems,
    unpinned_uses,
    validate_schema,
)

WORKFLOWS = REPO / ".github" / "workflows"
REUSABLE = WORKFLOWS / "conveyor.yml"
PROJECT = WORKFLOWS / "ci.yml"
RELEASE = WORKFLOWS / "release.yml"
ALL = sorted(WORKFLOWS.glob("*.yml"))
ACTION = REPO / "action.yml"
RELEASE_TAG = f"v{__version__}"


def parsed(path: Path) -> Any:
    return load_yaml(path.read_text("utf-8"))


def test_the_expected_workflows_exist() -> None:
    assert [p.name for p in ALL] == ["ci.yml", "conveyor.yml", "release.yml"]


def test_every_workflow_matches_the_github_workflow_schema() -> None:
    checked = validate_schema("vendor.github-workflows", ALL)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok -- validation done" in checked.stdout


def test_the_composite_action_matches_the_github_action_schema() -> None:
    checked = validate_schema("vendor.github-actions", [ACTION])
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("path", [*ALL, ACTION], ids=lambda p: p.name)
def test_every_action_is_pinned_by_sha_with_its_release_named(path: Path) -> None:
    # the one tag: this repository's own composite action at this very release
    assert unpinned_uses(parsed(path), self_ref=RELEASE_TAG) == []
    assert missing_version_comments(path.read_text("utf-8")) == []


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
        "conveyor-package",
        "registry-is-acr",
        "acr-name",
        "run-promotion",
        "dagger-version",
    } <= set(call["inputs"])
    # the CLI runs on the runner: there is no Dagger module to name any more
    assert "module" not in call["inputs"]
    # empty: the CLI of this release, from the composite action's checkout
    assert call["inputs"]["conveyor-package"]["default"] == ""
    assert call["inputs"]["registry-is-acr"]["type"] == "boolean"
    assert call["inputs"]["run-promotion"]["default"] is False
    assert {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "GITOPS_TOKEN"} <= set(
        call["secrets"]
    )
    assert all(secret["required"] is False for secret in call["secrets"].values())
    assert set(call["outputs"]) == {"image", "manifest-commit", "trace-id", "trace-url", "images"}


def step(job: Any, key: str) -> Any:
    """The step of ``job`` whose id (or else name) is ``key``."""
    return next(s for s in job["steps"] if key in (s.get("id"), s.get("name")))


def test_dagger_engine_runs_the_cli_on_the_runner_under_dagger_run() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    dagger = [s for s in job["steps"] if str(s.get("uses", "")).startswith("dagger/")]
    assert len(dagger) == 1
    run = dagger[0]
    assert run["id"] == "dagger"
    assert run["if"] == "inputs.engine == 'dagger'"
    assert run["uses"] == "dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77"
    # `dagger run CMD`: the CLI (and so git and kubectl) on the runner, the
    # containers in the engine of the session `dagger run` opens
    assert run["with"] == {
        "version": "${{ inputs.dagger-version }}",
        "verb": "run",
        "workdir": "${{ inputs.working-directory }}",
        "cloud-token": "${{ secrets.DAGGER_CLOUD_TOKEN }}",
        "args": "conveyor run --engine dagger --config ${{ inputs.config }} --output plain"
        " --run-id-file ${{ runner.temp }}/conveyor-run-id"
        " ${{ steps.select.outputs.args }}",
    }
    # the tokens reach the CLI through the environment, by the names the config reads
    assert run["env"] == {
        "CONVEYOR_GITOPS_TOKEN": "${{ secrets.GITOPS_TOKEN }}",
        "CONVEYOR_REGISTRY_PASSWORD": "${{ secrets.REGISTRY_PASSWORD }}",
    }
    # it fails the job with conveyor's exit code: nothing swallows the failure
    assert "continue-on-error" not in run
    assert job["env"]["CONVEYOR_STAGES__MANIFEST__ENVIRONMENT"] == "${{ inputs.environment }}"


def test_podman_engine_runs_the_same_cli() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    podman = step(job, "podman")
    assert podman["if"] == "inputs.engine == 'podman'"
    assert podman["run"].splitlines()[-2:] == [
        'conveyor run --engine podman --config "$CONVEYOR_CONFIG" --output plain \\',
        '  --run-id-file "$RUNNER_TEMP/conveyor-run-id" $CONVEYOR_STAGE_ARGS',
    ]
    assert podman["env"] == {
        **step(job, "dagger")["env"],
        "CONVEYOR_STAGE_ARGS": "${{ steps.select.outputs.args }}",
    }
    assert "continue-on-error" not in podman


def test_the_cli_is_installed_by_the_composite_action_of_this_release() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    names = [s.get("id") or s.get("name") for s in job["steps"]]
    install = step(job, "Install Conveyor")
    assert install["uses"] == f"conveyor-ci/conveyor@{RELEASE_TAG}"
    assert "if" not in install  # both engines run the CLI
    assert install["with"] == {
        "python-version": "${{ inputs.python-version }}",
        "package": "${{ inputs.conveyor-package }}",
    }
    assert names.index("tools") < names.index("Install Conveyor") < names.index("dagger")
    assert names.index("Install Conveyor") < names.index("podman")
    promote = parsed(REUSABLE)["jobs"]["promote"]
    assert step(promote, "Install Conveyor")["uses"] == install["uses"]
    assert "pip install" not in github_run_scripts(job) + github_run_scripts(promote)


def test_the_composite_action_installs_from_its_own_checkout() -> None:
    action = parsed(ACTION)
    assert action["runs"]["using"] == "composite"
    setup, install = action["runs"]["steps"]
    assert setup["uses"] == "actions/setup-python@a309ff8b426b58ec0e2a45f0f869d46889d02405"
    assert install["env"] == {
        "CONVEYOR_SOURCE": "${{ github.action_path }}",
        "CONVEYOR_EXTRAS": "${{ inputs.extras }}",
        "CONVEYOR_PACKAGE": "${{ inputs.package }}",
    }
    assert install["run"] == 'bash "$CONVEYOR_SOURCE/scripts/install-conveyor.sh"'
    assert (REPO / "scripts" / "install-conveyor.sh").is_file()
    assert action["inputs"]["package"]["default"] == ""
    assert action["outputs"]["version"]["value"] == "${{ steps.install.outputs.version }}"


def test_delivery_runs_one_at_a_time_and_is_never_cancelled_half_way() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    assert job["concurrency"]["cancel-in-progress"] is False
    assert "inputs.environment" in job["concurrency"]["group"]


def test_the_release_builds_and_publishes_on_version_tags_only() -> None:
    workflow = parsed(RELEASE)
    assert workflow["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    assert build["permissions"] == {"contents": "read"}
    assert "python -m build --sdist --wheel" in github_run_scripts(build)
    assert 'if [[ "$TAG" != "v$version" ]]' in github_run_scripts(build)
    # trusted publishing: the OIDC token, no password, a protected environment
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    upload = publish["steps"][-1]
    assert upload["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert "with" not in upload or "password" not in upload["with"]


def test_reports_are_collected_summarised_and_kept_whatever_happened() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    names = [s.get("id") or s.get("name") for s in job["steps"]]
    after_run = job["steps"][names.index("podman") + 1 :]
    assert [s.get("id") or s.get("name") for s in after_run] == [
        "Collect the run's reports",
        "Upload the scan to code scanning",
        "summary",
        "Keep the reports",
        "Check the verdict",
    ]
    # a failed run fails the job with its exit code, and the reports still go out
    for report_step in after_run[:-1]:
        assert report_step["if"].startswith("always()"), report_step
    keep = step(job, "Keep the reports")
    assert keep["uses"] == "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02"
    assert keep["with"]["path"] == "${{ inputs.working-directory }}/${{ inputs.reports-dir }}"
    # a run that exited 0 must have left a summary that says ok
    verdict = after_run[-1]
    assert verdict["if"] == "success() && steps.summary.outputs.ok != 'true'"
    assert "exit 1" in verdict["run"]
    assert job["outputs"] == {
        "image": "${{ steps.summary.outputs.image }}",
        "manifest-commit": "${{ steps.summary.outputs.manifest-commit }}",
        "trace-id": "${{ steps.summary.outputs.trace-id }}",
        "trace-url": "${{ steps.summary.outputs.trace-url }}",
    }


def test_the_gitops_tools_are_checked_before_anything_runs() -> None:
    job = parsed(REUSABLE)["jobs"]["pipeline"]
    tools = step(job, "tools")
    assert job["steps"].index(tools) == 1  # right after the checkout
    assert "command -v git" in tools["run"]
    assert "command -v kubectl" in tools["run"]
    # ubuntu runners ship kubectl; otherwise a pinned release, checked by its sha256
    assert tools["env"]["KUBECTL_VERSION"] == "v1.32.4"
    assert "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" in tools["run"]
    assert "sha256sum --check --strict" in tools["run"]
    assert "ubuntu runners ship both" in tools["run"]
    assert job["runs-on"] == "ubuntu-latest"


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
    assert upload["uses"] == (
        "github/codeql-action/upload-sarif@5d4e8d1aca955e8d8589aabd499c5cae939e33c7"
    )
    # a repository without code scanning refuses it: the delivered job stays green
    assert upload["continue-on-error"] is True
    assert upload["with"]["sarif_file"] == (
        "${{ inputs.working-directory }}/${{ inputs.reports-dir }}"
    )
    assert upload["if"].startswith("always()")
    assert "/**/*.sarif" in upload["if"]
    assert job["permissions"]["security-events"] == "write"


def test_promotion_is_a_pull_request_behind_the_production_environment() -> None:
    workflow = parsed(REUSABLE)
    assert promotion_problems(workflow) == []
    promote = workflow["jobs"]["promote"]
    assert promote["needs"] == "pipeline"
    assert promote["if"] == "inputs.run-promotion && needs.pipeline.result == 'success'"
    assert "id-token" not in promote["permissions"]


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
    assert set(example["with"]) <= set(parsed(REUSABLE)["on"]["workflow_call"]["inputs"])
    # this checkout's CLI, with dagger-io, relative to the repository root
    assert example["with"]["conveyor-package"] == ".[dagger]"


def test_docs_list_every_input_with_its_default() -> None:
    text = (REPO / "docs" / "ci.md").read_text("utf-8")
    table = text.split("\nInputs:\n", 1)[1].strip().split("\n\n", 1)[0]
    rows = {
        cells[0].strip("`"): cells[1].strip("`")
        for line in table.splitlines()[2:]
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    inputs = parsed(REUSABLE)["on"]["workflow_call"]["inputs"]
    assert set(rows) == set(inputs)
    for name, spec in inputs.items():
        default = spec.get("default", "")
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert rows[name] == (shown or "empty"), name
