from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

GitRepo = Callable[..., Path]
IDENTITY = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


def git(cwd: Path, *args: str) -> str:
    """Run real git in ``cwd``; its stdout."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **IDENTITY},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """A factory of real git repositories holding ``files``, committed on ``branch``."""

    def make(
        files: dict[str, str],
        *,
        name: str = "hello",
        branch: str = "main",
        origin: str | None = None,
    ) -> Path:
        repo = tmp_path / name
        repo.mkdir(parents=True)
        for relative, text in files.items():
            (repo / relative).parent.mkdir(parents=True, exist_ok=True)
            (repo / relative).write_text(text)
        git(repo, "init", "-q", "-b", branch)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", "app")
        if origin:
            git(repo, "remote", "add", "origin", origin)
        return repo.resolve()

    return make
