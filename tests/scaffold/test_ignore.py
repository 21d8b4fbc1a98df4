"""``conveyor init`` keeps ``.conveyor/`` out of git and out of the build context."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.scaffold.ignore import with_pattern

from .conftest import GitRepo

APP = {"Dockerfile": "FROM scratch\nCOPY . /app\n", "tests/test_app.py": ""}
CONVEYOR = Path(sys.executable).with_name("conveyor")


def init(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONVEYOR), "init", "--ci", "github", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    "text", [".conveyor/\n", "/.conveyor/\n", ".conveyor\n", "build/\n**/.conveyor/\n"]
)
def test_a_file_that_ignores_the_directory_already_is_left_alone(text: str) -> None:
    assert with_pattern(text) is None


def test_the_pattern_is_appended_after_what_is_there() -> None:
    assert with_pattern("dist/") == (
        "dist/\n\n# Conveyor's run records (conveyor run), never committed nor built into an image"
        "\n.conveyor/\n"
    )
    assert with_pattern("").endswith("\n.conveyor/\n")  # type: ignore[union-attr]
    assert with_pattern(".conveyor-cache/\n") is not None  # another directory


def test_init_creates_and_extends_the_ignore_files_so_git_and_builds_skip_runs(
    git_repo: GitRepo,
) -> None:
    repo = git_repo(APP, origin="https://github.com/acme/hello.git")
    (repo / ".gitignore").write_text("__pycache__/")
    (repo / ".containerignore").write_text("*.md\n")
    done = init(repo)
    assert done.returncode == 0, done.stderr
    assert "added .conveyor/ to .gitignore\n" in done.stdout
    assert "added .conveyor/ to .dockerignore\n" in done.stdout
    assert "added .conveyor/ to .containerignore\n" in done.stdout
    assert (repo / ".gitignore").read_text().startswith("__pycache__/\n\n# Conveyor's")
    assert (repo / ".containerignore").read_text().startswith("*.md\n\n# Conveyor's")
    # git really ignores a run record now
    (repo / ".conveyor" / "runs" / "r1").mkdir(parents=True)
    (repo / ".conveyor" / "runs" / "r1" / "summary.json").write_text("{}")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ".conveyor/" not in status.stdout
    # a second init (--force) adds nothing twice
    again = init(repo, "--force")
    assert again.returncode == 0, again.stderr
    assert "added .conveyor/" not in again.stdout
    assert (repo / ".dockerignore").read_text().count(".conveyor/") == 1


def test_an_unreadable_ignore_file_stops_init_before_anything_is_written(
    git_repo: GitRepo,
) -> None:
    repo = git_repo(APP)
    (repo / ".dockerignore").write_bytes(b"\xff\xfe not text")
    done = init(repo)
    assert done.returncode == 3
    assert f"error: {repo / '.dockerignore'}: cannot be read (is not UTF-8 text)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (repo / "conveyor.toml").exists()
    assert not (repo / ".gitignore").exists()
