"""The example pipeline's world: a committed app, a bare manifest repository, a registry."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TRIVY_DOUBLE = REPO / "tests" / "doubles" / "trivy"
TRIVY_REPORTS = REPO / "tests" / "scan" / "resources" / "trivy"


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass
class World:
    """Everything one end-to-end run touches, all real and all under tmp_path."""

    app: Path
    manifests: Path
    registry: str
    trivy_log: Path
    tmp: Path

    def commit_app(self, message: str) -> str:
        (self.app / "CHANGES").write_text(message + "\n")
        git("add", "-A", cwd=self.app)
        git("commit", "-q", "-m", message, cwd=self.app)
        return git("rev-parse", "HEAD", cwd=self.app)

    def env(self, report: str) -> dict[str, str]:
        return {
            **os.environ,
            "CI": "true",
            "CONVEYOR_REGISTRY__HOST": self.registry,
            "CONVEYOR_GITOPS__REPO": str(self.manifests),
            "CONVEYOR_POLICY__ALLOWED_REGISTRIES": "['^127\\.0\\.0\\.1:[0-9]+/.+$']",
            "CONVEYOR_STAGES__SCAN__TRIVY": str(TRIVY_DOUBLE),
            "TRIVY_DOUBLE_REPORT": str(TRIVY_REPORTS / report),
            "TRIVY_DOUBLE_LOG": str(self.trivy_log),
        }

    def run(self, report: str, *args: str) -> subprocess.CompletedProcess[str]:
        conveyor = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "conveyor"
        if not conveyor.exists():
            conveyor = Path(shutil.which("conveyor") or "conveyor")
        return subprocess.run(
            [str(conveyor), "run", "--engine", "podman", "--output", "plain", *args],
            cwd=self.app,
            env=self.env(report),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def manifest_checkout(self) -> Path:
        target = self.tmp / f"checkout-{len(list(self.tmp.glob('checkout-*')))}"
        git("clone", "-q", str(self.manifests), str(target), cwd=self.tmp)
        return target


@pytest.fixture
def world(tmp_path: Path, registry: str, base_image: str) -> World:
    app = tmp_path / "hello"
    shutil.copytree(
        EXAMPLES / "hello", app, ignore=shutil.ignore_patterns(".conveyor", "__pycache__")
    )
    git("init", "-q", "-b", "main", cwd=app)
    source = tmp_path / "manifests-src"
    shutil.copytree(EXAMPLES / "manifests", source)
    git("init", "-q", "-b", "main", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", "manifests", cwd=source)
    bare = tmp_path / "manifests.git"
    git("clone", "-q", "--bare", str(source), str(bare), cwd=tmp_path)
    return World(app, bare, registry, tmp_path / "trivy-calls.jsonl", tmp_path)
