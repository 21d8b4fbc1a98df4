"""The GitLab CI/CD component templates/conveyor.yml: its inputs, its rules, its jobs.

Structure is checked on the content as GitLab includes it (inputs
interpolated, schema-validated); the rules are evaluated by gitlab-ci-local;
and the jobs' scripts run for real (see test_gitlab_local.py for whole jobs
under gitlab-ci-local).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor import __version__

from .conftest import FAILING_BUILD_APP, GitRepo
from .rules import (
    REPO,
    component_parts,
    gitlab_image_problems,
    gitlab_promotion_problems,
    gitlab_rule_problems,
    gitlab_scripts,
    inline_secret_problems,
    render_component,
    validate_schema,
)

COMPONENT = REPO / "templates" / "conveyor.yml"
TEXT = COMPONENT.read_text("utf-8")
ENGINES = ["dagger", "podman"]
VENV_BIN = Path(sys.executable).parent
JOBS = {
    "conveyor-validate",
    "conveyor-deliver",
    "conveyor-validate-image",
    "conveyor-deliver-image",
    "conveyor-promote",
}
#: The first rule of the one-job validate and deliver jobs: off with matrix.
NOT_WITH_MATRIX = {"if": '$CONVEYOR_MATRIX_INPUT == "matrix true"', "when": "never"}


def rendered(**inputs: Any) -> Any:
    return render_component(TEXT, **inputs)


def test_the_component_is_the_only_template() -> None:
    assert sorted(p.name for p in (REPO / "templates").iterdir()) == ["conveyor.yml"]
    assert not (REPO / "ci" / "gitlab").exists()  # one path: the component, also for include


def test_the_inputs_are_config_engine_environment_stages_and_more() -> None:
    spec, _ = component_parts(TEXT)
    inputs = spec["inputs"]
    assert {"config", "engine", "environment", "stages"} <= set(inputs)
    assert inputs["engine"]["options"] == ENGINES
    assert inputs["config"]["default"] == "conveyor.toml"
    assert inputs["environment"]["default"] == "staging"
    assert inputs["stages"]["default"] == "gates"
    assert all(field.get("description") for field in inputs.values())


@pytest.mark.parametrize("engine", ENGINES)
def test_the_content_matches_the_gitlab_ci_schema(engine: str, tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yml"
    path.write_text(json.dumps(rendered(engine=engine)), "utf-8")
    checked = validate_schema("vendor.gitlab-ci", [path])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "$[[" not in json.dumps(rendered(engine=engine))  # every input is declared


@pytest.mark.parametrize("engine", ENGINES)
def test_nothing_global_leaks_into_the_includers_jobs(engine: str) -> None:
    document = rendered(engine=engine)
    for key in ("variables", "default", "workflow", "stages", "image", "before_script"):
        assert key not in document, key
    visible = {name for name in document if not name.startswith(".")}
    assert visible == JOBS


@pytest.mark.parametrize("engine", ENGINES)
def test_both_pipeline_jobs_use_the_chosen_engine_and_the_shared_run(engine: str) -> None:
    document = rendered(engine=engine)
    for name in ("conveyor-validate", "conveyor-deliver"):
        assert document[name]["extends"] == [f".conveyor-{engine}", ".conveyor-run"]
        assert document[name]["stage"] == "test"
    assert document[f".conveyor-{engine}"]["variables"]["CONVEYOR_ENGINE"] == engine


def test_validation_runs_on_merge_requests_and_feature_branches_only() -> None:
    job = rendered()["conveyor-validate"]
    # the stages input as it is, read by `conveyor run --validate`
    assert job["variables"] == {"CONVEYOR_VALIDATE": "true", "CONVEYOR_VALIDATE_STAGES": "gates"}
    assert job["rules"] == [
        NOT_WITH_MATRIX,
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
        {"if": "$CI_COMMIT_BRANCH && $CI_OPEN_MERGE_REQUESTS", "when": "never"},
        {"if": "$CI_COMMIT_BRANCH && $CI_COMMIT_BRANCH != $CI_DEFAULT_BRANCH"},
    ]


def test_delivery_runs_on_the_default_branch_one_at_a_time() -> None:
    job = rendered(environment="qa")["conveyor-deliver"]
    assert job["resource_group"] == "conveyor-qa"
    assert "variables" not in job  # no validation: the whole pipeline
    assert job["rules"] == [
        NOT_WITH_MATRIX,
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "never"},
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"},
    ]
    assert rendered(environment="qa")[".conveyor-run"]["variables"]["CONVEYOR_ENVIRONMENT"] == "qa"


@pytest.mark.parametrize("matrix", [False, True])
def test_every_rule_compares_a_variable_as_gitlab_documents_it(matrix: bool) -> None:
    document = rendered(matrix=matrix)
    assert gitlab_rule_problems(document) == []
    # the matrix input reaches the rules as a job variable of text, never a boolean
    variable = document[".conveyor-run"]["variables"]["CONVEYOR_MATRIX_INPUT"]
    assert variable == ("matrix true" if matrix else "matrix false")


def test_promotion_is_manual_on_the_default_branch_and_fails_when_it_fails() -> None:
    document = rendered()
    job = {**document[".conveyor-promote"], **document["conveyor-promote"]}
    assert gitlab_promotion_problems("conveyor-promote", job) == []
    # whichever delivers in this pipeline: the one job, or every image's job
    assert job["needs"] == [
        {"job": "conveyor-deliver", "optional": True},
        {"job": "conveyor-deliver-image", "optional": True},
    ]
    assert job["stage"] == "deploy"
    assert "allow_failure: true" not in TEXT


@pytest.mark.parametrize("engine", ENGINES)
def test_images_are_pinned_and_no_secret_is_inline(engine: str) -> None:
    document = rendered(engine=engine)
    assert gitlab_image_problems(document) == []
    assert inline_secret_problems(document) == []
    assert "CONVEYOR_GITOPS_TOKEN" not in json.dumps(document).replace("CONVEYOR_GITOPS_TOKEN,", "")


def test_the_cli_comes_from_the_components_project_at_this_release() -> None:
    document = rendered()
    assert document[".conveyor-run"]["variables"]["CONVEYOR_RELEASE"] == f"v{__version__}"
    assert document[".conveyor-promote"]["variables"]["CONVEYOR_RELEASE"] == f"v{__version__}"
    install = document[".conveyor-dagger"]["before_script"][1]
    assert (
        '--branch "$CONVEYOR_RELEASE" \\\n'
        '    "${CI_SERVER_PROTOCOL:-https}://gitlab-ci-token:${CI_JOB_TOKEN}'
        '@${CI_SERVER_FQDN:-$CI_SERVER_HOST}/${CONVEYOR_PROJECT}.git" "$src"'
    ) in install
    # the tested dependency set of that release, and no token left in the checkout
    assert 'set -- -c "$src/constraints.txt"' in install
    assert 'rm -rf "$src/.git"' in install
    assert (
        '"$venv/bin/pip" install --quiet --disable-pip-version-check "$@" "$CONVEYOR_PACKAGE"'
        in (install)
    )
    assert install == document[".conveyor-podman"]["before_script"][1]
    assert document[".conveyor-run"]["variables"]["CONVEYOR_PROJECT"] == "conveyor-ci/conveyor"
    assert "pip install --quiet" not in gitlab_scripts(document[".conveyor-run"])


def test_jobs_at_once_on_one_shell_runner_share_no_scratch_path() -> None:
    # a parallel:matrix on a shell runner runs its jobs at once, all with one /tmp
    # (two jobs installing into one venv broke each other's pip install)
    install = rendered()[".conveyor-podman"]["before_script"][1]
    assert install.startswith(
        "set --\n# this job's own scratch directory: jobs running at once on one shell runner\n"
    )
    assert 'export CONVEYOR_JOB_TMP="${TMPDIR:-/tmp}/conveyor-job-${CI_JOB_ID:-$$}"' in install
    shared = re.findall(r"\$\{TMPDIR:-/tmp\}/[A-Za-z0-9_.${}:-]+", TEXT)
    assert sorted(set(shared)) == [
        "${TMPDIR:-/tmp}/conveyor-job-${CI_JOB_ID:-$$}",
        "${TMPDIR:-/tmp}/conveyor-run-id-${CI_JOB_ID:-local}",
    ]
    assert 'rm -rf "$CONVEYOR_JOB_TMP"' in gitlab_scripts(rendered()[".conveyor-run"])


def test_reports_junit_container_scanning_and_the_rest_as_artifacts() -> None:
    artifacts = rendered(**{"reports-dir": "out"})[".conveyor-run"]["artifacts"]
    assert artifacts == {
        "when": "always",
        "expire_in": "30 days",
        "paths": ["out/"],
        "reports": {
            "junit": ["out/*.xml", "out/**/*.xml"],
            "container_scanning": "out/gl-container-scanning-report.json",
            "annotations": "out/gl-annotations.json",
        },
    }
    assert "conveyor report gitlab-container-scanning" in gitlab_scripts(
        rendered()[".conveyor-run"]
    )


def test_the_dagger_job_checks_the_dagger_cli_before_unpacking_it() -> None:
    job = rendered()[".conveyor-dagger"]
    assert job["services"] == [{"name": "docker:27-dind", "alias": "docker"}]
    install = job["before_script"][2]
    assert install.index("sha256sum -c") < install.index("tar -xzf")
    assert job["variables"]["DAGGER_VERSION"] == "0.21.11"


def test_the_podman_job_installs_what_is_missing_and_checks_every_download() -> None:
    job = rendered(engine="podman")[".conveyor-podman"]
    packages, _, downloads, _ = job["before_script"]
    for manager in ("dnf install", "apt-get install", "apk add"):
        assert manager in packages
    assert downloads.count("sha256sum -c --strict") == 3  # kubectl, Trivy pinned or published
    assert downloads.index("sha256sum -c --strict") < downloads.index('chmod 0755 "$bin/kubectl"')
    assert downloads.rindex("sha256sum -c --strict") < downloads.index("tar -xzf")
    assert job["variables"]["TRIVY_VERSION"] == "0.74.0"
    assert job["variables"]["STORAGE_DRIVER"] == "vfs"
    assert "services" not in job


DAGGER_RUN_DOUBLE = """\
import json, os, pathlib, sys
# A stand-in for the dagger CLI (no engine can run here): it records the call,
# then runs the command as `dagger run` does, inside a "session" whose port
# nothing listens on, so the real conveyor CLI finds no engine there.
argv = sys.argv[1:]
pathlib.Path(os.environ["DOUBLE_RECORD"]).write_text(json.dumps({
    "argv": argv,
    "manifest_environment": os.environ.get("CONVEYOR_STAGES__MANIFEST__ENVIRONMENT"),
    "token_in_env": os.environ.get("CONVEYOR_GITOPS_TOKEN"),
}))
command = argv[argv.index("run") + 1:]
env = {**os.environ, "DAGGER_SESSION_PORT": os.environ["DOUBLE_PORT"], "DAGGER_SESSION_TOKEN": "x"}
os.execvpe(command[0], command, env)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_script(
    engine: str,
    job: str,
    cwd: Path,
    tmp_path: Path,
    extra_path: str = "",
    **extra: str,
) -> Any:
    """Run the shared run script with sh as GitLab does (one shell), with ``job``'s variables."""
    document = rendered(engine=engine)
    variables = {
        **document[".conveyor-run"]["variables"],
        **document[f".conveyor-{engine}"]["variables"],
        **document[job].get("variables", {}),
        **extra,
    }
    env = {
        "PATH": f"{extra_path}{VENV_BIN}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        **{k: str(v) for k, v in variables.items() if k != "STORAGE_DRIVER"},
        "CI_COMMIT_SHA": "a" * 40,
        "CONVEYOR_GITOPS_TOKEN": "glpat-secret-value",
        "DOUBLE_RECORD": str(tmp_path / "dagger-call.json"),
        "DOUBLE_PORT": str(free_port()),
    }
    return subprocess.run(
        ["sh", "-e", "-c", "\n".join(document[".conveyor-run"]["script"])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_dagger_job_runs_the_cli_under_dagger_run_with_conveyors_exit_code(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dagger = bin_dir / "dagger"
    dagger.write_text(f"#!{sys.executable}\n{DAGGER_RUN_DOUBLE}")
    dagger.chmod(0o755)
    done = run_script("dagger", "conveyor-deliver", repo, tmp_path, f"{bin_dir}:")
    out = done.stdout + done.stderr
    # the real CLI found no engine in the session: 6, "missing tool or engine"
    assert done.returncode == 6, out
    assert "  build: failed engine 'dagger' cannot run here" in out
    call = json.loads((tmp_path / "dagger-call.json").read_text())
    # conveyor names its run in a file of the job's own, collected after the run
    run_id_file = call["argv"][-1]
    assert Path(run_id_file).name.startswith("conveyor-run-id-")
    assert call == {
        "argv": [
            *("--progress", "plain", "run", "conveyor", "run", "--engine", "dagger"),
            *("--config", "conveyor.toml", "--output", "plain", "--run-id-file", run_id_file),
        ],
        "manifest_environment": "staging",
        # the token reaches the CLI by the environment, never on a command line
        "token_in_env": "glpat-secret-value",
    }


def test_validation_skips_everything_but_the_chosen_stages(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    done = run_script("podman", "conveyor-validate", repo, tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # the build fails, as the app means it to
    assert "validation: every stage publish waits for; skipped: publish and what needs it" in out
    assert "  publish: skipped a validation run (--validate gates) publishes nothing" in out
    assert "  manifest: skipped dependency 'publish' was skipped" in out
    summary = json.loads((repo / "conveyor-reports" / "summary.json").read_text())
    assert summary["ok"] is False
    assert "glpat-secret-value" not in out


@pytest.mark.parametrize(
    ("stages", "shown"),
    [("test build", "test build"), ("test,build", "test build"), ("", "gates"), ("  ", "gates")],
    ids=["spaces", "commas", "empty-is-gates", "blank-is-gates"],
)
def test_the_stages_input_reaches_conveyor_run_validate_as_it_is(
    git_repo: GitRepo, tmp_path: Path, stages: str, shown: str
) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    done = run_script(
        "podman", "conveyor-validate", repo, tmp_path, CONVEYOR_VALIDATE_STAGES=stages
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # the build fails, as the app means it to
    assert f"  publish: skipped a validation run (--validate {shown}) publishes nothing" in out
    if shown != "gates":
        assert "validation: test build; every other stage is skipped, and publish always" in out
        assert "  scan: skipped not in --validate test build" in out


def test_a_stage_list_with_a_name_that_is_no_stage_runs_nothing(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    done = run_script(
        "podman", "conveyor-validate", repo, tmp_path, CONVEYOR_VALIDATE_STAGES="tset"
    )
    assert done.returncode == 3, done.stdout + done.stderr  # a configuration error
    assert "error: no stage named 'tset'" in done.stderr
    assert not (repo / ".conveyor" / "runs").exists()  # refused before anything ran


# --- the collect script: the run's reports and its Dagger Cloud trace link ------------

DAGGER_TRACE = "https://dagger.cloud/acme/traces/4bf92f3577b34da6a3ce929d0e0e4736"


def collect(tmp_path: Path, summary: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run the script that collects this job's run (the third of .conveyor-run) on ``summary``."""
    run_id = "20260101T000000Z-abc123"
    artifacts = tmp_path / ".conveyor" / "runs" / run_id / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "run-id").write_text(run_id + "\n")
    script = rendered(engine="dagger")[".conveyor-run"]["script"][2]
    assert "CONVEYOR_RUN_ID_FILE" in script  # the collect script, not another
    return subprocess.run(
        ["sh", "-e", "-c", script],
        cwd=tmp_path,
        env={
            "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
            "CONVEYOR_CONFIG": "conveyor.toml",
            "CONVEYOR_REPORTS": "conveyor-reports",
            "CONVEYOR_RUN_ID_FILE": str(tmp_path / "run-id"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SUMMARY = {"run_id": "20260101T000000Z-abc123", "sha": "a" * 40, "ok": True, "stages": []}


def test_the_job_log_and_page_show_the_dagger_cloud_trace(tmp_path: Path) -> None:
    done = collect(tmp_path, {**SUMMARY, "trace_url": DAGGER_TRACE})
    assert done.returncode == 0, done.stderr
    assert f"\nDagger Cloud trace: {DAGGER_TRACE}\n" in done.stdout
    # an annotations report: GitLab shows the link on the job's page
    annotations = json.loads((tmp_path / "conveyor-reports" / "gl-annotations.json").read_text())
    assert annotations == {
        "conveyor": [{"external_link": {"label": "Dagger Cloud trace", "url": DAGGER_TRACE}}]
    }
    reports = rendered()[".conveyor-run"]["artifacts"]["reports"]
    assert reports["annotations"] == "conveyor-reports/gl-annotations.json"


@pytest.mark.parametrize(
    "link",
    [
        None,
        f"{DAGGER_TRACE}?token=dag_secret",
        "https://ci:dag_secret@dagger.cloud/acme/traces/1",
        "https://dagger.cloud/acme/traces/1\nDagger Cloud trace: https://evil.example/dag_secret",
        f"{DAGGER_TRACE}\n",
        42,
    ],
    ids=["none", "query", "userinfo", "two-lines", "trailing-newline", "not-a-string"],
)
def test_no_link_or_one_that_could_carry_a_token_is_not_shown(tmp_path: Path, link: object) -> None:
    done = collect(tmp_path, {**SUMMARY, **({"trace_url": link} if link is not None else {})})
    assert done.returncode == 0, done.stderr
    assert "run 20260101T000000Z-abc123 of " in done.stdout
    assert "Dagger Cloud trace" not in done.stdout
    assert "dag_secret" not in done.stdout
    assert not (tmp_path / "conveyor-reports" / "gl-annotations.json").exists()
