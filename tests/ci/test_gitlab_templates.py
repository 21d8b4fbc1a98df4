"""The includable GitLab templates: schema-valid, pinned images, the CLI in the job, promotion."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAILING_BUILD_APP, GitRepo
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
VENV_BIN = Path(sys.executable).parent


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
    job = parsed(DIND)[".conveyor-pipeline"]
    assert job["services"] == [{"name": "docker:27-dind", "alias": "docker"}]
    assert job["image"] == "docker:27"
    assert job["variables"] == {
        "DOCKER_HOST": "tcp://docker:2376",
        "DOCKER_TLS_CERTDIR": "/certs",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/certs/client",
    }


def test_dagger_job_runs_the_cli_in_the_job_under_dagger_run() -> None:
    document = parsed(DIND)
    job = document[".conveyor-pipeline"]
    script = "\n".join(job["script"])
    assert (
        "dagger --progress plain run \\\n"
        '  conveyor run --engine dagger --config "$CONVEYOR_CONFIG" --output plain'
        " || status=$?"
    ) in script
    assert 'CONVEYOR_STAGES__MANIFEST__ENVIRONMENT="$CONVEYOR_ENVIRONMENT"' in script
    assert job["script"][-1] == 'exit "$status"'
    assert "dagger call" not in gitlab_scripts(job)
    assert document["variables"]["CONVEYOR_PACKAGE"] == "conveyor[dagger]"
    assert "CONVEYOR_MODULE" not in document["variables"]


def test_dagger_job_installs_git_kubectl_python_and_a_checked_dagger_cli() -> None:
    document = parsed(DIND)
    before = document[".conveyor-pipeline"]["before_script"]
    # kubectl is in Alpine's community repository, enabled in the docker image
    assert before[0] == "apk add --no-cache curl jq git kubectl python3 py3-pip"
    # Alpine's Python is externally managed: the CLI goes into its own venv
    assert before[1:4] == [
        "python3 -m venv /opt/conveyor",
        '/opt/conveyor/bin/pip install --quiet "$CONVEYOR_PACKAGE"',
        'export PATH="/opt/conveyor/bin:$PATH"',
    ]
    install = before[4]
    assert 'archive="dagger_v${DAGGER_VERSION}_linux_${arch}.tar.gz"' in install
    assert 'base="https://dl.dagger.io/dagger/releases/${DAGGER_VERSION}"' in install
    assert 'echo "$DAGGER_SHA256  $archive" | sha256sum -c' in install
    assert 'grep " ${archive}\\$" dagger-checksums.txt | sha256sum -c' in install
    # unpacked only after the check
    assert install.index("sha256sum -c") < install.index("tar -xzf")
    assert "install.sh" not in gitlab_scripts(document[".conveyor-pipeline"])
    assert document["variables"]["DAGGER_VERSION"] == "0.21.11"
    assert document["variables"]["DAGGER_SHA256"] == ""
    assert "for tool in git kubectl dagger conveyor; do" in before[5]


def test_podman_job_installs_git_and_a_checked_kubectl() -> None:
    document = parsed(PODMAN)
    before = "\n".join(document[".conveyor-podman-pipeline"]["before_script"])
    assert "dnf install -y --quiet python3-pip jq git-core" in before
    assert 'url="https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl"' in before
    assert "sha256sum --check --strict" in before
    assert "for tool in git kubectl podman conveyor; do" in before
    assert document["variables"]["KUBECTL_VERSION"] == "v1.32.4"


def collect_snippet(path: Path, job: str) -> str:
    """The script entry that collects the run's reports."""
    (entry,) = [s for s in parsed(path)[job]["script"] if "/.conveyor/runs/" in s]
    return str(entry)


def test_both_templates_collect_the_reports_the_same_way() -> None:
    assert collect_snippet(DIND, ".conveyor-pipeline") == collect_snippet(
        PODMAN, ".conveyor-podman-pipeline"
    )


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


def run_job_script(
    path: Path, job: str, cwd: Path, tmp_path: Path, extra_path: str = ""
) -> tuple[int, str]:
    """Run a pipeline job's script with sh as GitLab does (one shell, errexit)."""
    env = {
        "PATH": f"{extra_path}{VENV_BIN}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        **{k: str(v) for k, v in parsed(path)["variables"].items()},
        "CI_COMMIT_SHA": "a" * 40,
        "CONVEYOR_GITOPS_TOKEN": "glpat-secret-value",
        "DOUBLE_RECORD": str(tmp_path / "dagger-call.json"),
        "DOUBLE_PORT": str(free_port()),
    }
    done = subprocess.run(
        ["sh", "-e", "-c", "\n".join(parsed(path)[job]["script"])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_dagger_job_exits_with_conveyors_exit_code(git_repo: GitRepo, tmp_path: Path) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dagger = bin_dir / "dagger"
    dagger.write_text(f"#!{sys.executable}\n{DAGGER_RUN_DOUBLE}")
    dagger.chmod(0o755)
    code, out = run_job_script(DIND, ".conveyor-pipeline", repo, tmp_path, f"{bin_dir}:")
    # the real CLI found no engine in the session: 6, "missing tool or engine"; the
    # session opens at the first container operation (inside the run span), so that
    # stage fails with it and the run's summary.json says so
    assert code == 6, out
    assert (
        "error in stage build: engine 'dagger' cannot run here: the Dagger engine did not answer"
        in out
    )
    assert "  build: failed engine 'dagger' cannot run here" in out
    assert "  publish: skipped dependency 'build' failed" in out
    call = json.loads((tmp_path / "dagger-call.json").read_text())
    assert call == {
        "argv": [
            "--progress",
            "plain",
            "run",
            "conveyor",
            "run",
            "--engine",
            "dagger",
            "--config",
            "conveyor.toml",
            "--output",
            "plain",
        ],
        "manifest_environment": "staging",
        # the token reaches the CLI by the environment, never on a command line
        "token_in_env": "glpat-secret-value",
    }


def test_podman_job_runs_collects_and_exits_with_conveyors_exit_code(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    code, out = run_job_script(PODMAN, ".conveyor-podman-pipeline", repo, tmp_path)
    assert code == 1, out  # a stage failed
    (run_dir,) = (repo / ".conveyor" / "runs").iterdir()
    reports = repo / "conveyor-reports"
    assert sorted(p.name for p in reports.iterdir()) == ["spans.jsonl", "summary.json"]
    summary = json.loads((reports / "summary.json").read_text())
    assert f"run {run_dir.name} of {summary['sha']}: failed\n" in out
    assert "  build: failed command failed with exit code 1: podman build" in out
    assert "  publish: skipped dependency 'build' failed\n" in out
    spans = [json.loads(line) for line in (reports / "spans.jsonl").read_text().splitlines()]
    (trace_id,) = {s["trace_id"] for s in spans if s["name"] == "conveyor.run"}
    assert f"trace id: {trace_id}\n" in out
    assert "glpat-secret-value" not in out


def test_promotion_jobs_install_git_for_conveyor_promote() -> None:
    for path, job in ((DIND, ".conveyor-promote"), (PODMAN, ".conveyor-podman-promote")):
        script = parsed(path)[job]["script"]
        assert "apt-get install -y -qq --no-install-recommends git" in script[0]
        assert script[-1] == (
            'conveyor promote --config "$CONVEYOR_CONFIG" --from staging --to production'
        )


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
