"""The reusable workflow's matrix mode: a plan job, then one pipeline job per changed image.

The structure is read from the workflow; the plan, selection, validation and
summary scripts run for real (GitHub's bash, the real conveyor CLI, real git
repositories), as in test_github_job_scripts.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from conveyor import __version__

from .conftest import FAILING_IMAGES_APP, GitRepo
from .rules import REPO, load_yaml
from .test_github_job_scripts import BASH, job_env, run_bash_step, run_summary

REUSABLE = REPO / ".github" / "workflows" / "conveyor.yml"
WORKFLOW = load_yaml(REUSABLE.read_text("utf-8"))
JOBS = WORKFLOW["jobs"]
IDENTITY = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


def step(job: Any, key: str) -> Any:
    return next(s for s in job["steps"] if key in (s.get("id"), s.get("name")))


# --- structure ------------------------------------------------------------------


def test_matrix_is_an_optional_boolean_input_off_by_default() -> None:
    matrix = WORKFLOW["on"]["workflow_call"]["inputs"]["matrix"]
    assert matrix["type"] == "boolean"
    assert matrix["default"] is False
    assert "conveyor run --image NAME" in matrix["description"]
    output = WORKFLOW["on"]["workflow_call"]["outputs"]["images"]
    assert output["value"] == "${{ jobs.plan.outputs.matrix }}"


def test_the_plan_job_runs_only_in_matrix_mode_with_the_whole_history() -> None:
    plan = JOBS["plan"]
    assert plan["if"] == "inputs.matrix"
    assert plan["permissions"] == {"contents": "read"}
    checkout = plan["steps"][0]
    assert checkout["uses"] == "actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd"
    assert checkout["with"] == {"persist-credentials": False, "fetch-depth": 0}
    install = step(plan, "Install Conveyor")
    assert install["uses"] == f"conveyor-ci/conveyor@v{__version__}"
    assert install["with"]["extras"] == ""  # planning builds nothing: no dagger-io
    assert (
        'conveyor plan --config "$CONVEYOR_CONFIG" --format github-matrix'
        in (step(plan, "plan")["run"])
    )
    assert plan["outputs"] == {
        "matrix": "${{ steps.plan.outputs.matrix }}",
        "count": "${{ steps.plan.outputs.count }}",
    }


def test_the_pipeline_job_fans_out_over_the_plan_and_is_one_job_without_it() -> None:
    pipeline = JOBS["pipeline"]
    assert pipeline["needs"] == "plan"
    # no image to deliver: no job; the plan failed: no job; matrix off: the one job
    assert pipeline["if"] == (
        "${{ !cancelled() && (!inputs.matrix || needs.plan.result == 'success'"
        " && needs.plan.outputs.count != '0') }}"
    )
    assert pipeline["strategy"] == {
        "fail-fast": False,
        "matrix": "${{ fromJSON(inputs.matrix && needs.plan.outputs.matrix"
        ' || \'{"include":[{"image":""}]}\') }}',
    }
    # matrix off: one entry whose image is empty, so every per-image value
    # below falls back to what the single job always had
    fallback = pipeline["strategy"]["matrix"].split("|| '", 1)[1].rsplit("')", 1)[0]
    assert json.loads(fallback) == {"include": [{"image": ""}]}
    per_image = "${{ matrix.image && format('-{0}', matrix.image) || '' }}"
    assert pipeline["name"] == (
        "${{ matrix.image && format('deliver {0}', matrix.image) || 'pipeline' }}"
    )
    assert pipeline["concurrency"] == {
        "group": "conveyor-${{ github.repository }}-${{ github.event_name == 'pull_request'"
        " && github.ref || inputs.environment }}" + per_image,
        "cancel-in-progress": False,
    }
    assert pipeline["env"]["CONVEYOR_IMAGE_NAME"] == "${{ matrix.image }}"
    assert step(pipeline, "Check out the source")["with"]["fetch-depth"] == (
        "${{ inputs.matrix && '0' || '1' }}"
    )
    keep = step(pipeline, "Keep the reports")["with"]
    assert keep["name"] == "conveyor-reports" + per_image  # one artifact per image
    sarif = step(pipeline, "Upload the scan to code scanning")["with"]
    assert sarif["category"] == "conveyor-image-scan" + per_image
    # promotion waits for the pipeline job: with matrix, for every image's job
    assert JOBS["promote"]["needs"] == "pipeline"


# --- the plan step, run for real ------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **IDENTITY},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def monorepo(tmp_path: Path) -> Path:
    """examples/monorepo in a git repository of its own, one commit."""
    repo = tmp_path / "monorepo"
    shutil.copytree(
        REPO / "examples" / "monorepo", repo, ignore=shutil.ignore_patterns(".conveyor")
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "shop")
    return repo


def run_plan(repo: Path, tmp_path: Path, before: str | None) -> tuple[Any, dict[str, str], str]:
    """The plan step as GitHub runs it on a push whose previous commit is ``before``."""
    env = job_env(tmp_path)
    if before is not None:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"before": before}))
        env["GITHUB_EVENT_PATH"] = str(event)
    done = subprocess.run(
        [BASH, "--noprofile", "--norc", "-eo", "pipefail", "-c", step(JOBS["plan"], "plan")["run"]],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = Path(env["GITHUB_OUTPUT"])
    pairs = (
        dict(line.split("=", 1) for line in output.read_text().splitlines())
        if (output.exists())
        else {}
    )
    summary = Path(env["GITHUB_STEP_SUMMARY"])
    return done, pairs, summary.read_text() if summary.exists() else ""


def test_the_plan_lists_the_images_the_push_changed(tmp_path: Path) -> None:
    repo = monorepo(tmp_path)
    before = git(repo, "rev-parse", "HEAD")
    with (repo / "services" / "api" / "app.py").open("a") as source:
        source.write("# a change of the api only\n")
    git(repo, "commit", "-qam", "api")
    done, outputs, summary = run_plan(repo, tmp_path, before)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(outputs["matrix"]) == {"include": [{"image": "api"}]}
    assert outputs["count"] == "1"
    assert "One job per image: " in summary


def test_the_plan_of_a_push_that_changed_no_image_has_no_job(tmp_path: Path) -> None:
    repo = monorepo(tmp_path)
    before = git(repo, "rev-parse", "HEAD")
    (repo / "NOTES.md").write_text("not under any image's paths\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-qm", "notes")
    done, outputs, summary = run_plan(repo, tmp_path, before)
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs == {"matrix": '{"include": []}', "count": "0"}
    assert "No image changed: no delivery job runs." in summary


def test_the_plan_gives_every_image_a_job_when_the_changes_are_unknown(tmp_path: Path) -> None:
    repo = monorepo(tmp_path)
    done, outputs, _ = run_plan(repo, tmp_path, before="0" * 40)  # a new branch
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(outputs["matrix"]) == {"include": [{"image": "api"}, {"image": "web"}]}
    assert outputs["count"] == "2"


def test_the_plan_fails_with_a_clear_error_on_a_missing_config(tmp_path: Path) -> None:
    repo = monorepo(tmp_path)
    (repo / "conveyor.toml").unlink()
    done, outputs, _ = run_plan(repo, tmp_path, before=None)
    assert done.returncode == 1
    assert "::error::config 'conveyor.toml' does not exist in" in done.stdout
    assert outputs == {}


# --- one image's job: its arguments, its validation, its run, its summary -------------


def select(tmp_path: Path, image: str, event: str = "push") -> tuple[Any, str]:
    env = job_env(
        tmp_path,
        EVENT=event,
        VALIDATE="test build scan smoke",
        ONLY="",
        SKIP="",
        CONVEYOR_IMAGE_NAME=image,
    )
    done = run_bash_step("select", tmp_path, env)
    output = Path(env["GITHUB_OUTPUT"])
    return done, output.read_text() if output.exists() else ""


def test_a_matrix_job_runs_conveyor_with_its_image(tmp_path: Path) -> None:
    done, output = select(tmp_path, "api")
    assert done.returncode == 0, done.stderr
    assert output == "args=--image api\n"
    (tmp_path / "pr").mkdir()
    done, output = select(tmp_path / "pr", "api", event="pull_request")
    assert output == (
        "args=--image api --validate test --validate build --validate scan --validate smoke\n"
    )
    (tmp_path / "bad").mkdir()
    done, output = select(tmp_path / "bad", "api --skip scan")
    assert done.returncode == 1
    assert "::error::'api --skip scan' is not an image name" in done.stdout
    assert output == ""


def test_a_pull_request_validates_each_images_own_stages(git_repo: GitRepo, tmp_path: Path) -> None:
    repo = git_repo("shop", FAILING_IMAGES_APP)
    env = job_env(tmp_path, CONVEYOR_IMAGE_NAME="api")
    done, output = select(repo, "api", event="pull_request")
    assert done.returncode == 0, done.stderr
    args = output.strip().removeprefix("args=")
    run = run_bash_step("podman", repo, {**env, "CONVEYOR_STAGE_ARGS": args})
    assert run.returncode == 1, run.stdout + run.stderr  # api's build fails, as meant
    (run_dir,) = (repo / ".conveyor" / "runs").iterdir()
    summary = json.loads((run_dir / "artifacts" / "summary.json").read_text())
    rows = {row["name"]: (row["status"], row["reason"]) for row in summary["stages"]}
    # build-api, scan-api ... are their kind's stages: validated, not skipped
    assert rows["build-api"][0] == "failed"
    shown = "--validate test build scan smoke"
    assert rows["publish-api"] == ("skipped", f"a validation run ({shown}) publishes nothing")
    assert rows["manifest"][0] == "skipped"
    assert rows["policy"][0] == "skipped"


def test_a_matrix_job_builds_its_image_and_leaves_the_other_to_its_own_job(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    repo = git_repo("shop", FAILING_IMAGES_APP)
    env = job_env(tmp_path, CONVEYOR_IMAGE_NAME="api")
    run = run_bash_step("podman", repo, {**env, "CONVEYOR_STAGE_ARGS": "--image api"})
    assert run.returncode == 1, run.stdout + run.stderr  # api's build fails, as meant
    collected = run_bash_step("Collect the run's reports", repo, env)
    assert collected.returncode == 0, collected.stderr
    summary = json.loads((repo / "conveyor-reports" / "summary.json").read_text())
    rows = {row["name"]: (row["status"], row["reason"]) for row in summary["stages"]}
    assert rows["build-api"][0] == "failed"
    assert rows["build-web"] == ("skipped", "another job delivers it (this one: --image api)")
    markdown, outputs = run_summary(repo, env)
    assert markdown.startswith("## Conveyor: api\n")
    assert "| build-web | skipped | " in markdown
    # a matrix job sets no workflow output another image's job would overwrite
    assert outputs == {"ok": "false"}


def test_a_matrix_jobs_summary_shows_its_images_publish(tmp_path: Path) -> None:
    image = f"myacr.azurecr.io/shop/api:{'a' * 40}@sha256:{'1' * 64}"
    summary = {
        "sha": "a" * 40,
        "run_id": "20260101T000000Z-abc123",
        "ok": True,
        "stages": [
            {"name": "publish-api", "status": "success", "reason": "", "duration": 1.0},
            {"name": "publish-web", "status": "skipped", "reason": "another job delivers it"},
        ],
        "outputs": {
            "publish-api": {"image.ref": image, "image.digest": "sha256:" + "1" * 64},
            "manifest": {"environment": "staging", "commit": "c0ffee1"},
        },
    }
    (tmp_path / "conveyor-reports").mkdir()
    (tmp_path / "conveyor-reports" / "summary.json").write_text(json.dumps(summary))
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path, CONVEYOR_IMAGE_NAME="api"))
    assert f"Image: `{image}`" in markdown
    assert "Manifest commit: c0ffee1" in markdown
    assert outputs == {"ok": "true"}


def test_without_matrix_the_summary_and_outputs_are_as_before(tmp_path: Path) -> None:
    (tmp_path / "conveyor-reports").mkdir()
    markdown, outputs = run_summary(tmp_path, job_env(tmp_path, CONVEYOR_IMAGE_NAME=""))
    assert markdown.startswith("## Conveyor\n")
    assert outputs == {
        "image": "",
        "manifest-commit": "",
        "trace-id": "",
        "trace-url": "",
        "ok": "false",
    }
