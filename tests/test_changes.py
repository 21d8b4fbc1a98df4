"""Which files a commit changed, on real git repositories (shallow ones too)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conveyor.changes import UNKNOWN, Changes, changed_files, ci_base, matches


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for relative, text in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    repo = tmp_path / "mono"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    commit(repo, {"api/app.py": "1", "web/index.js": "1", "README.md": "1"}, "first")
    return repo


def test_files_changed_since_a_commit(monorepo: Path) -> None:
    base = git("rev-parse", "HEAD", cwd=monorepo)
    head = commit(monorepo, {"api/app.py": "2", "docs/x.md": "2"}, "second")

    changes = changed_files(monorepo, base, head)

    assert changes.files == {"api/app.py", "docs/x.md"}
    assert changes.touches(["api"])
    assert not changes.touches(["web/"])
    assert changes.skip_reason(["web"]) == f"nothing changed under web since {base}"
    assert changes.skip_reason(["api", "web"]) is None


def test_a_pull_request_changes_what_its_branch_changed(monorepo: Path) -> None:
    git("checkout", "-q", "-b", "feature", cwd=monorepo)
    head = commit(monorepo, {"web/index.js": "2"}, "feature")
    git("checkout", "-q", "main", cwd=monorepo)
    commit(monorepo, {"api/app.py": "3"}, "main moved on")

    # compared with the merge base, main's own later change is not the branch's
    changes = changed_files(monorepo, "main", head)

    assert changes.files == {"web/index.js"}


def test_paths_are_relative_to_the_configuration_directory(monorepo: Path) -> None:
    base = git("rev-parse", "HEAD", cwd=monorepo)
    head = commit(monorepo, {"api/src/main.py": "x", "web/index.js": "2"}, "second")

    changes = changed_files(monorepo / "api", base, head)

    assert changes.files == {"src/main.py"}


def test_unknown_changes_run_everything(monorepo: Path, tmp_path: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=monorepo)
    shallow = tmp_path / "shallow"
    git("clone", "-q", "--depth=1", f"file://{monorepo}", str(shallow), cwd=tmp_path)

    missing = changed_files(shallow, "0123456789abcdef0123456789abcdef01234567", head)

    assert missing.files is None
    assert "is not in this checkout" in missing.reason
    assert missing.touches(["web"])
    assert missing.skip_reason(["web"]) is None
    assert changed_files(monorepo, None, head) is UNKNOWN


def test_a_shallow_checkout_fetches_the_base(monorepo: Path, tmp_path: Path) -> None:
    base = git("rev-parse", "HEAD", cwd=monorepo)
    head = commit(monorepo, {"web/index.js": "2"}, "second")
    shallow = tmp_path / "shallow"
    git("clone", "-q", "--depth=1", f"file://{monorepo}", str(shallow), cwd=tmp_path)
    with pytest.raises(subprocess.CalledProcessError):
        git("cat-file", "-e", f"{base}^{{commit}}", cwd=shallow)

    assert changed_files(shallow, base, head).files == {"web/index.js"}


@pytest.mark.parametrize(
    ("file", "pattern", "expected"),
    [
        ("api/app.py", "api", True),
        ("api/app.py", "api/", True),
        ("apiary/x", "api", False),
        ("api/app.py", "api/app.py", True),
        ("api/v1/app.py", "api/*/app.py", True),
        ("api/v1/app.py", "*.py", True),
        ("web/x.js", "*.py", False),
        ("x", ".", True),
    ],
)
def test_matches(file: str, pattern: str, expected: bool) -> None:
    assert matches(file, pattern) is expected


def test_what_ci_names_as_the_base(tmp_path: Path) -> None:
    zero = "0" * 40
    assert ci_base({}) is None
    assert ci_base({"CI_MERGE_REQUEST_DIFF_BASE_SHA": "abc", "CI_COMMIT_BEFORE_SHA": "d"}) == "abc"
    assert ci_base({"CI_COMMIT_BEFORE_SHA": zero}) is None  # a new branch
    assert ci_base({"GITHUB_BASE_REF": "main"}) == "origin/main"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"before": "f" * 40}))
    assert ci_base({"GITHUB_EVENT_PATH": str(event)}) == "f" * 40
    event.write_text(json.dumps({"before": zero}))
    assert ci_base({"GITHUB_EVENT_PATH": str(event)}) is None
    assert ci_base({"CONVEYOR_CHANGED_SINCE": "v1", "GITHUB_BASE_REF": "main"}) == "v1"


def test_changes_without_paths_always_run() -> None:
    assert Changes("b", frozenset()).touches([])
