"""``conveyor graph`` and ``conveyor plan`` on a real configuration and git checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app

runner = CliRunner()

CONFIG = """
[app]
name = "hello"

[registry]
host = "registry.example.com"
repository = "team/hello"

[stages.test]
image = "python:3.12-slim"
command = ["pytest", "-q"]

[gitops]
repo = "https://git.example.com/manifests.git"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"

[policy]
allowed_registries = ['^registry\\.example\\.com/.+$']
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "conveyor.toml").write_text(CONFIG)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "x"],
    ):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    for name in ("CONVEYOR_SOURCE_SHA", "GITHUB_SHA", "CI_COMMIT_SHA"):
        monkeypatch.delenv(name, raising=False)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_graph_json_lists_stages_in_order_with_needs(project: str) -> None:
    result = runner.invoke(app, ["graph", "--format", "json"])
    assert result.exit_code == 0, result.output
    stages = {s["name"]: s for s in json.loads(result.output)["stages"]}
    assert list(stages) == [
        "test",
        "build",
        "scan",
        "smoke",
        "publish",
        "manifest",
        "policy",
        "report",
    ]
    assert stages["publish"]["needs"] == ["test", "build", "scan", "smoke"]
    assert stages["manifest"]["needs"] == ["publish"]
    assert stages["report"]["always"] is True


def test_graph_mermaid_and_dot(project: str) -> None:
    mermaid = runner.invoke(app, ["graph", "-f", "mermaid"]).output
    assert mermaid.startswith("flowchart LR\n")
    assert "    publish --> manifest\n" in mermaid
    assert '    report["report (always)"]\n' in mermaid
    dot = runner.invoke(app, ["graph", "-f", "dot"]).output
    assert dot.startswith("digraph conveyor {")
    assert '    "build" -> "scan";\n' in dot


def test_graph_rejects_an_unknown_format(project: str) -> None:
    result = runner.invoke(app, ["graph", "-f", "svg"])
    assert result.exit_code == 2
    assert "'svg' is not one of" in result.output  # the console script's line: test_usage_errors


def test_plan_resolves_every_reference_without_side_effects(project: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"plan for hello at {project}\n")
    assert f"    address: registry.example.com/team/hello:{project}\n" in result.output
    assert (
        f"    sets: registry.example.com/team/hello:{project}@sha256:<pushed digest>\n"
        in result.output
    )
    assert f"    build args: GIT_SHA={project}\n" in result.output
    assert "    command: pytest -q\n" in result.output
    assert not (tmp_path / ".conveyor" / "runs").exists()


def test_plan_shows_what_skip_and_only_leave_out(project: str) -> None:
    skipped = runner.invoke(app, ["plan", "--skip", "scan"]).output
    assert "\nscan (needs build): skip - requested with --skip\n" in skipped
    assert (
        "\npublish (needs test, build, scan, smoke): skip - dependency 'scan' is skipped\n"
        in skipped
    )
    only = runner.invoke(app, ["plan", "--only", "scan"]).output
    assert "\ntest: skip - not selected by --only scan\n" in only
    assert "\nscan (needs build): Trivy scan of the image, severity gate\n" in only


def test_plan_shows_what_a_validation_run_leaves_out(project: str) -> None:
    gates = runner.invoke(app, ["plan", "--validate", "gates"])
    assert gates.exit_code == 0, gates.output
    assert (
        "\npublish (needs test, build, scan, smoke): skip - a validation run (--validate gates) "
        "publishes nothing\n" in gates.output
    )
    assert "\nscan (needs build): Trivy scan of the image, severity gate\n" in gates.output
    listed = runner.invoke(app, ["plan", "--validate", "test", "--validate", "build"]).output
    assert "\nscan (needs build): skip - not in --validate test build\n" in listed
    assert "\ntest: " in listed
    assert "\ntest: skip" not in listed


def test_plan_refuses_a_registry_outside_the_policy(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_REGISTRY__HOST", "docker.io")
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 4
    assert "policy: docker.io/team/hello" in result.output


def test_plan_with_an_unknown_stage_lists_the_known_ones(project: str) -> None:
    conveyor = Path(sys.executable).with_name("conveyor")
    done = subprocess.run(
        [str(conveyor), "plan", "--only", "deploy"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 3
    assert done.stderr == (
        "error: no stage named 'deploy'\n"
        "  hint: known stages: build, manifest, policy, publish, report, scan, smoke, test\n"
    )


def test_plan_never_shows_credentials_written_into_the_repo_url(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "CONVEYOR_GITOPS__REPO", "https://ci:ghp_s3cr3tt0ken@git.example.com/manifests.git"
    )
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 0, result.output
    assert "ghp_s3cr3tt0ken" not in result.output
    assert "    repo: https://***@git.example.com/manifests.git\n" in result.output


def test_publish_needs_build_even_with_scan_and_smoke_disabled(
    project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_STAGES__SCAN__ENABLED", "false")
    monkeypatch.setenv("CONVEYOR_STAGES__SMOKE__ENABLED", "false")
    result = runner.invoke(app, ["graph", "--format", "json"])
    stages = {s["name"]: s for s in json.loads(result.output)["stages"]}
    assert "scan" not in stages
    assert "smoke" not in stages
    assert stages["publish"]["needs"] == ["test", "build"]


CUSTOM = """
[stages.lint]
image = "python:3.12-slim"
command = ["ruff", "check"]

[stages.web-lint]
image = "node:22.11.0"
script = "npm ci && npm run lint"
paths = ["web"]

[stages.e2e]
image = "python:3.12-slim"
command = ["pytest", "e2e"]
needs = ["manifest"]

[stages.notify]
image = "python:3.12-slim"
command = ["true"]
gate = false
"""


def commit_all(cwd: Path, message: str) -> str:
    subprocess.run(["git", "add", "-A"], cwd=cwd, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", message],
        cwd=cwd,
        check=True,
    )
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def test_custom_stages_gate_publish_and_run_after_delivery(project: str) -> None:
    path = Path("conveyor.toml")
    path.write_text(path.read_text() + CUSTOM)

    result = runner.invoke(app, ["graph", "--format", "json"])

    assert result.exit_code == 0, result.output
    stages = {s["name"]: s for s in json.loads(result.output)["stages"]}
    # gates: publish waits for them; a stage after the manifest or with gate = false does not
    assert set(stages["publish"]["needs"]) == {"test", "build", "scan", "smoke", "lint", "web-lint"}
    assert stages["e2e"]["needs"] == ["manifest"]
    assert stages["notify"]["needs"] == []
    assert stages["report"]["needs"][-1] == "e2e"


def test_plan_skips_stages_whose_paths_did_not_change(project: str) -> None:
    path = Path("conveyor.toml")
    path.write_text(path.read_text() + CUSTOM)
    base = commit_all(Path.cwd(), "custom stages")
    Path("api.py").write_text("x = 1\n")
    commit_all(Path.cwd(), "api only")

    unchanged = runner.invoke(app, ["plan", "--changed-since", base])

    assert unchanged.exit_code == 0, unchanged.output
    assert "changes since " + base + ": 1 files" in unchanged.output
    assert f"web-lint: skip - nothing changed under web since {base}" in unchanged.output
    # an unchanged gate holds nothing back: publish does not need it
    assert "publish (needs test, build, scan, smoke, lint):" in unchanged.output

    Path("web").mkdir()
    Path("web/app.js").write_text("1\n")
    commit_all(Path.cwd(), "web too")
    changed = runner.invoke(app, ["plan", "--changed-since", base])

    assert "web-lint: skip" not in changed.output
    assert "web-lint: " in changed.output
    assert "publish (needs test, build, scan, smoke, lint, web-lint):" in changed.output


def test_plan_runs_everything_when_the_base_is_unknown(project: str) -> None:
    path = Path("conveyor.toml")
    path.write_text(path.read_text() + CUSTOM)
    commit_all(Path.cwd(), "custom stages")

    result = runner.invoke(app, ["plan", "--changed-since", "f" * 40])

    assert result.exit_code == 0, result.output
    assert "changes unknown (" + "f" * 40 + " is not in this checkout" in result.output
    assert "web-lint: skip" not in result.output


def test_graph_draws_a_stage_s_services(project: str) -> None:
    path = Path("conveyor.toml")
    path.write_text(
        path.read_text()
        + """
[stages.integration]
image = "python:3.12-slim"
command = ["pytest", "it"]
services = [{ name = "db", image = "postgres:16.4", port = 5432 }]
"""
    )

    as_json = json.loads(runner.invoke(app, ["graph", "--format", "json"]).output)
    mermaid = runner.invoke(app, ["graph", "--format", "mermaid"]).output
    dot = runner.invoke(app, ["graph", "--format", "dot"]).output

    stages = {s["name"]: s for s in as_json["stages"]}
    assert stages["integration"]["services"] == ["db: postgres:16.4"]
    assert '    integration__service0[("db: postgres:16.4")] -.- integration' in mermaid
    assert '"integration/service0" [label="db: postgres:16.4", shape=cylinder' in dot


@pytest.fixture
def monorepo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """examples/monorepo committed, then a commit that changes only the web service."""
    repo = tmp_path / "monorepo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "monorepo", repo)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    base = commit_all(repo, "as deployed")
    web = repo / "services" / "web" / "app.py"
    web.write_text(web.read_text() + "\n# web only\n")
    commit_all(repo, "web only")
    monkeypatch.chdir(repo)
    for name in ("CONVEYOR_SOURCE_SHA", "GITHUB_SHA", "CI_COMMIT_SHA"):
        monkeypatch.delenv(name, raising=False)
    return repo, base


def test_plan_emits_the_fan_out_of_the_changed_images(monorepo: tuple[Path, str]) -> None:
    _, base = monorepo

    every = runner.invoke(app, ["plan", "--format", "github-matrix"])
    changed = runner.invoke(app, ["plan", "--format", "github-matrix", "--changed-since", base])
    gitlab = runner.invoke(app, ["plan", "--format", "gitlab-matrix", "--changed-since", base])

    assert every.exit_code == 0, every.output
    assert json.loads(every.output) == {"include": [{"image": "api"}, {"image": "web"}]}
    assert json.loads(changed.output) == {"include": [{"image": "web"}]}
    assert gitlab.output == 'parallel:\n  matrix:\n    - CONVEYOR_IMAGE_NAME: ["web"]\n'


def test_one_job_of_the_fan_out_delivers_its_own_image(monorepo: tuple[Path, str]) -> None:
    result = runner.invoke(app, ["plan", "--image", "api"])

    assert result.exit_code == 0, result.output
    other = "skip - another job delivers it (this one: --image api)"
    assert f"build-web: {other}" in result.output
    lines = {line.split(" ")[0].rstrip(":"): line for line in result.output.splitlines()}
    assert lines["publish-web"].endswith(other)
    assert "skip" not in lines["publish-api"]
    assert "manifest (needs publish-api):" in result.output


def test_an_unknown_image_is_a_usage_error(monorepo: tuple[Path, str]) -> None:
    conveyor = Path(sys.executable).parent / "conveyor"
    result = subprocess.run(
        [str(conveyor), "plan", "--image", "nope"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 2
    assert result.stderr == (
        "error: conveyor plan: Invalid value for '--image': 'nope' is not an image of this "
        "pipeline (images: api, web) (see 'conveyor plan --help')\n"
    )


def test_a_stage_after_a_left_out_built_in_runs_after_what_it_waits_for(project: str) -> None:
    # without [gitops] there is no manifest stage: e2e still runs after publish, not as a gate
    path = Path("conveyor.toml")
    config = path.read_text()
    config = config[: config.index("[gitops]")] + config[config.index("[policy]") :]
    path.write_text(
        config
        + """
[stages.e2e]
image = "python:3.12-slim"
command = ["pytest", "e2e"]
needs = ["manifest"]

[stages.after-scan]
image = "python:3.12-slim"
command = ["true"]
needs = ["scan"]

[stages.scan]
enabled = false
"""
    )

    result = runner.invoke(app, ["graph", "--format", "json"])

    assert result.exit_code == 0, result.output
    stages = {s["name"]: s for s in json.loads(result.output)["stages"]}
    assert "manifest" not in stages
    assert stages["e2e"]["needs"] == ["publish"]
    assert "e2e" not in stages["publish"]["needs"]
    # a left-out scan: what needs it waits for the build scan would have needed
    assert stages["after-scan"]["needs"] == ["build"]
    assert "after-scan" in stages["publish"]["needs"]


def test_plan_warns_that_publish_would_refuse_uncommitted_changes(
    project: str, tmp_path: Path
) -> None:
    clean = runner.invoke(app, ["plan"])
    assert clean.exit_code == 0, clean.output
    assert "would refuse" not in clean.output
    (tmp_path / "conveyor.toml").write_text(CONFIG + "\n# an edit nobody committed\n")

    edited = runner.invoke(app, ["plan"])
    skipped = runner.invoke(app, ["plan", "--skip", "scan"])

    assert edited.exit_code == 0, edited.output
    assert (
        "warning: publish would refuse the image: the source has uncommitted changes to "
        "conveyor.toml (commit or stash the changes, or run with --skip publish)"
    ) in " ".join(edited.output.split())
    assert skipped.exit_code == 0, skipped.output
    assert "would refuse" not in skipped.output  # publish is skipped with its dependency
