"""``conveyor policy check DIR`` over real kustomize trees: report and exit codes."""

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
RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
CONFIG = """
[app]
name = "hello"

[registry]
host = "myacr.azurecr.io"
repository = "hello"

[policy]
allowed_registries = ['^myacr\\.azurecr\\.io/.+$']
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(RESOURCES, tmp_path / "manifests")
    (tmp_path / "conveyor.toml").write_text(CONFIG)
    return tmp_path / "manifests"


def test_json_report_lists_every_violation(tree: Path) -> None:
    result = runner.invoke(
        app,
        [
            "policy",
            "check",
            str(tree),
            "--format",
            "json",
            "--config",
            str(tree.parent / "conveyor.toml"),
        ],
    )
    assert result.exit_code == 4
    report = json.loads(result.output)
    assert report["kustomizations"] == [
        "apps/hello/base",
        "apps/hello/overlays/production",
        "apps/hello/overlays/staging",
        "apps/worker/base",
        "apps/worker/overlays/staging",
    ]
    # hello: 3 containers x 3 kustomizations; worker: 5 workloads x 2
    assert report["images"] == 19
    found = {(v["where"], v["rule"]) for v in report["violations"]}
    # the staging overlays pin every app image: only third-party images remain
    staging = {w for w, _ in found if w.startswith("apps/hello/overlays/staging")}
    assert staging == set()
    assert (
        "apps/worker/overlays/staging: StatefulSet/queue container queue",
        "registry-not-allowed",
    ) in found
    assert (
        "apps/worker/overlays/staging: StatefulSet/queue container queue",
        "mutable-tag",
    ) in found
    assert (
        "apps/worker/overlays/staging: DaemonSet/agent container agent",
        "digest-required",
    ) in found
    assert ("apps/worker/overlays/staging: Pod/debug container shell", "mutable-tag") in found
    assert ("apps/hello/base: Deployment/hello initContainer migrate", "mutable-tag") in found
    assert ("apps/worker/base: CronJob/report container report", "registry-not-allowed") in found
    assert all(v["hint"] for v in report["violations"])
    worker_staging = [
        v for v in report["violations"] if v["where"].startswith("apps/worker/overlays")
    ]
    assert {v["image"] for v in worker_staging} == {
        "docker.io/library/redis:latest",
        "myacr.azurecr.io/agent:5f2a",
        "busybox",
    }


def test_clean_tree_passes_with_table_summary(tree: Path) -> None:
    result = runner.invoke(
        app,
        [
            "policy",
            "check",
            str(tree / "apps/hello/overlays/staging"),
            "--config",
            str(tree.parent / "conveyor.toml"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        "checked   .: 3 image(s), 0 violation(s)\n3 image(s) in 1 kustomization(s): no violations\n"
    )


def test_table_shows_violations(tree: Path) -> None:
    result = runner.invoke(
        app,
        [
            "policy",
            "check",
            str(tree / "apps/worker/overlays"),
            "--config",
            str(tree.parent / "conveyor.toml"),
        ],
    )
    assert result.exit_code == 4
    lines = result.output.splitlines()
    assert lines[-1] == "5 image(s) in 1 kustomization(s): 7 violation(s)"
    assert "registry-not-allowed" in result.output
    assert "docker.io/library/redis:latest" in result.output


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        ("empty", 8, "has no kustomization.yaml in it or below it"),
        ("missing", 8, "is not a directory"),
    ],
)
def test_bad_trees(tree: Path, setup: str, code: int, message: str) -> None:
    target = tree / "x"
    if setup == "empty":
        target.mkdir()
    result = runner.invoke(
        app, ["policy", "check", str(target), "--config", str(tree.parent / "conveyor.toml")]
    )
    assert result.exit_code == code
    assert result.output.startswith(f"error: {target}: {message}")


def test_real_process_exit_code_and_json(tree: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from conveyor.cli.app import main; main()",
            "policy",
            "check",
            str(tree / "apps/worker/overlays"),
            "--format",
            "json",
            "--config",
            str(tree.parent / "conveyor.toml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 4
    assert json.loads(done.stdout)["images"] == 5
