"""Whether a build context is exactly the commit its image is tagged with (real git).

An image built with uncommitted edits, or from another checkout than the
commit it is tagged with, must not be pushed under that commit's tag: a
pushed tag is never overwritten, so it would stand for the commit for good.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conveyor.stages.source import parse_status, unpublishable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A monorepo: the image's context ``app/`` (its Dockerfile at the root), and ``other/``."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "app" / "util.py").write_text("X = 1\n")
    (root / "other" / "readme.txt").write_text("other\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


async def test_a_clean_checkout_at_the_commit_may_be_published(repo: Path) -> None:
    assert await unpublishable(repo / "app", "../Dockerfile", head(repo)) is None


async def test_an_edited_tracked_file_in_the_context_is_named(repo: Path) -> None:
    (repo / "app" / "main.py").write_text("print('edited')\n")

    reason = await unpublishable(repo / "app", "../Dockerfile", head(repo))

    assert reason == "the source has uncommitted changes to app/main.py"


async def test_staged_renamed_and_deleted_files_count_and_the_dockerfile_too(repo: Path) -> None:
    git(repo, "mv", "app/util.py", "app/helpers.py")
    (repo / "app" / "new.py").write_text("Y = 2\n")
    git(repo, "add", "app/new.py")
    (repo / "Dockerfile").write_text("FROM scratch\n")

    reason = await unpublishable(repo / "app", "../Dockerfile", head(repo))

    assert reason is not None
    assert reason.startswith("the source has uncommitted changes to ")
    named = reason.removeprefix("the source has uncommitted changes to ").split(", ")
    assert sorted(named) == ["Dockerfile", "app/helpers.py", "app/new.py"]


async def test_edits_outside_the_context_and_untracked_files_do_not_count(repo: Path) -> None:
    (repo / "other" / "readme.txt").write_text("edited elsewhere in the monorepo\n")
    (repo / "app" / "scratch.log").write_text("untracked\n")

    assert await unpublishable(repo / "app", "../Dockerfile", head(repo)) is None


async def test_another_checkout_than_the_tagged_commit_is_refused(repo: Path) -> None:
    first = head(repo)
    (repo / "app" / "main.py").write_text("print('second')\n")
    git(repo, "commit", "-q", "-am", "second")

    reason = await unpublishable(repo / "app", "../Dockerfile", first)

    assert reason == (
        f"the checkout is at {head(repo)}, not at {first}, the commit the image is tagged with"
    )


async def test_many_changes_are_summed_up(repo: Path) -> None:
    for n in range(7):
        (repo / "app" / f"f{n}.py").write_text("")
    git(repo, "add", "app")

    reason = await unpublishable(repo / "app", "../Dockerfile", head(repo))

    assert reason is not None
    assert reason.endswith(" and 2 more")


async def test_a_context_outside_git_is_trusted_to_be_the_named_commit(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    assert await unpublishable(tmp_path, "Dockerfile", "0" * 40) is None


def test_the_status_parser_reads_every_kind_of_entry() -> None:
    oid = "a" * 40
    zeros = "0" * 40
    text = "\0".join(
        [
            f"# branch.oid {oid}",
            "# branch.head main",
            f"1 .M N... 100644 100644 100644 {oid} {oid} dir/with space.py",
            f"2 R. N... 100644 100644 100644 {oid} {oid} R100 new name.py",
            "old name.py",
            f"u UU N... 100644 100644 100644 100644 {oid} {oid} {oid} conflict.py",
            "",
        ]
    )

    assert parse_status(text) == (oid, ["dir/with space.py", "new name.py", "conflict.py"])
    assert parse_status("# branch.oid (initial)\0# branch.head main\0") == (None, [])
    assert parse_status(f"# branch.oid {zeros}\0") == (zeros, [])


async def test_where_git_is_not_installed_the_named_commit_is_trusted(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "app" / "main.py").write_text("print('edited')\n")
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # as in a Dagger module's runtime image without git

    assert await unpublishable(repo / "app", "../Dockerfile", "0" * 40) is None
