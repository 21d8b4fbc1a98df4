"""Helpers of the GitOps tests: running git to set up and inspect repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git in a test (setting up or inspecting repositories)."""
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def make_remote(tmp_path: Path, content: Path, name: str = "remote.git") -> Path:
    """A bare repository whose ``main`` holds a copy of ``content`` in one commit."""
    seed = tmp_path / f"{name}-seed"
    shutil.copytree(content, seed)
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git("commit", "-q", "-m", "seed", cwd=seed)
    bare = tmp_path / name
    git("clone", "-q", "--bare", str(seed), str(bare))
    shutil.rmtree(seed)
    return bare


def show(bare: Path, path: str, rev: str = "main") -> str:
    """A file's text at ``rev`` of a bare repository (CRLF kept)."""
    return subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=bare, capture_output=True, check=True
    ).stdout.decode()
