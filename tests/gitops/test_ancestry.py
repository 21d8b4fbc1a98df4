"""Which of two source commits is newer, in real git repositories, and what it costs."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from conveyor.gitops.ancestry import Order, compare
from conveyor.process import observe_processes
from started_processes import Started

IDENTITY = ["-c", "user.name=T", "-c", "user.email=t@example.invalid"]


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def history(root: Path, names: Sequence[str]) -> list[str]:
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    commits = []
    for name in names:
        (root / "CHANGES").write_text(f"{name}\n")
        git("add", "-A", cwd=root)
        git(*IDENTITY, "commit", "-qm", name, cwd=root)
        commits.append(git("rev-parse", "HEAD", cwd=root))
    return commits


def test_a_descendant_is_told_newer_by_one_git_process(tmp_path: Path) -> None:
    old, _, new = history(tmp_path / "source", ["old", "middle", "new"])
    started = Started()

    with observe_processes(started):
        found = compare(tmp_path / "source", new, old)

    assert found.order is Order.NEWER
    assert [c[1:] for c in started.commands] == [["merge-base", "--is-ancestor", old, new]]


def test_an_ancestor_is_still_told_older_and_an_unknown_commit_unknown(tmp_path: Path) -> None:
    old, new = history(tmp_path / "source", ["old", "new"])

    assert compare(tmp_path / "source", old, new).order is Order.OLDER
    unknown = compare(tmp_path / "source", new, "0" * 40)
    assert unknown.order is Order.UNKNOWN
    assert "000000000000 is not in the source repository" in unknown.reason
