"""update_manifest against real bare repositories: commits, no-ops, retries, refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from gitops_helpers import git, show

from conveyor.errors import (
    CommandFailedError,
    ManifestError,
    PushConflictError,
    PushRejectedError,
    UnreachableError,
)
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.kustomization import ImageEdit, find_image
from conveyor.gitops.update import Author, Backoff, update_manifest

STAGING = "apps/hello/overlays/staging/kustomization.yaml"
WORKER = "apps/worker/overlays/staging/kustomization.yaml"
SHA = "feedbeef" * 5
DIGEST = "sha256:" + "6" * 64
OLD = "myacr.azurecr.io/hello:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567@sha256:" + "2" * 64


def hello(tag: str = SHA, digest: str = DIGEST) -> FileEdit:
    return FileEdit(STAGING, ImageEdit("hello", "myacr.azurecr.io/hello", tag, digest))


def log(bare: Path) -> list[str]:
    return git("log", "--format=%s", "main", cwd=bare).splitlines()


def push_from_outside(bare: Path, tmp_path: Path, path: str, edit: ImageEdit, msg: str) -> None:
    """Another pipeline's commit landing on the remote meanwhile."""
    other = tmp_path / f"other-{len(list(tmp_path.iterdir()))}"
    git("clone", "-q", str(bare), str(other))
    file = other / path
    file.write_bytes(edit.apply(file.read_bytes().decode(), path).encode())
    git("commit", "-q", "-am", msg, cwd=other)
    git("push", "-q", "origin", "HEAD:main", cwd=other)


def test_update_commits_pushes_and_reports(remote: Path) -> None:
    result = update_manifest(
        str(remote),
        "main",
        [hello()],
        message="deploy(staging): hello",
        author=Author("CI", "ci@x"),
    )
    assert result.changed
    assert result.attempts == 1
    assert result.previous == OLD
    assert result.branch == "main"
    assert result.commit == git("rev-parse", "main", cwd=remote).strip()
    assert log(remote) == ["deploy(staging): hello", "seed"]
    assert git("log", "-1", "--format=%an <%ae>|%cn", "main", cwd=remote) == "CI <ci@x>|CI\n"
    entry = find_image(show(remote, STAGING), "hello")
    assert entry is not None
    assert entry.format() == f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    # only that file changed
    changed = git("diff", "--name-only", "main~1", "main", cwd=remote).split()
    assert changed == [STAGING]


def test_same_update_twice_is_a_no_op_without_empty_commit(remote: Path) -> None:
    update_manifest(str(remote), "main", [hello()], message="first")
    again = update_manifest(str(remote), "main", [hello()], message="second")
    assert again.changed is False
    assert again.commit is None
    assert again.previous == f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    assert log(remote) == ["first", "seed"]


def test_several_files_land_in_one_commit(remote: Path) -> None:
    worker = FileEdit(WORKER, ImageEdit("worker", "myacr.azurecr.io/worker", SHA, DIGEST))
    result = update_manifest(str(remote), "main", [hello(), worker], message="both")
    assert result.previous_values[1] is not None
    assert sorted(git("diff", "--name-only", "main~1", "main", cwd=remote).split()) == [
        STAGING,
        WORKER,
    ]


def test_non_fast_forward_is_refetched_reapplied_and_retried(remote: Path, tmp_path: Path) -> None:
    waits: list[float] = []
    calls = []

    def meanwhile(_: Path) -> None:
        calls.append(1)
        if len(calls) == 1:
            push_from_outside(
                remote, tmp_path, WORKER, ImageEdit("worker", None, "v2", None), "worker v2"
            )

    result = update_manifest(
        str(remote),
        "main",
        [hello()],
        message="hello",
        verify=meanwhile,
        sleep=waits.append,
        backoff=Backoff(initial=0.2),
    )
    assert result.attempts == 2
    assert len(waits) == 1
    assert 0 <= waits[0] <= 0.2
    assert log(remote) == ["hello", "worker v2", "seed"]
    assert git("rev-list", "--merges", "main", cwd=remote) == ""
    worker = find_image(show(remote, WORKER), "worker")
    assert worker is not None
    assert worker.new_tag == "v2"


def test_same_image_changed_to_another_value_meanwhile_is_a_conflict(
    remote: Path, tmp_path: Path
) -> None:
    calls = []

    def meanwhile(_: Path) -> None:
        calls.append(1)
        if len(calls) == 1:
            push_from_outside(
                remote, tmp_path, STAGING, ImageEdit("hello", None, "other", None), "x"
            )

    with pytest.raises(PushConflictError) as caught:
        update_manifest(
            str(remote), "main", [hello()], message="hello", verify=meanwhile, sleep=lambda _: None
        )
    assert str(caught.value) == (
        f"{STAGING}: image 'hello' was changed concurrently to 'hello:other' while this run "
        f"set 'myacr.azurecr.io/hello:{SHA}@{DIGEST}'\n"
        "  hint: re-run the pipeline on the newer commit; nothing was pushed"
    )
    assert log(remote) == ["x", "seed"]


def test_same_value_set_meanwhile_is_a_no_op(remote: Path, tmp_path: Path) -> None:
    calls = []
    edit = hello()

    def meanwhile(_: Path) -> None:
        calls.append(1)
        if len(calls) == 1:
            assert isinstance(edit.editor, ImageEdit)
            push_from_outside(remote, tmp_path, STAGING, edit.editor, "the other run")

    result = update_manifest(
        str(remote), "main", [edit], message="ours", verify=meanwhile, sleep=lambda _: None
    )
    assert (result.changed, result.commit, result.attempts) == (False, None, 2)
    assert log(remote) == ["the other run", "seed"]


def test_push_that_keeps_losing_gives_up_after_max_attempts(remote: Path, tmp_path: Path) -> None:
    counter = iter(range(100))

    def meanwhile(_: Path) -> None:
        n = next(counter)
        push_from_outside(
            remote, tmp_path, WORKER, ImageEdit("worker", None, f"v{n}", None), f"w{n}"
        )

    with pytest.raises(PushRejectedError) as caught:
        update_manifest(
            str(remote),
            "main",
            [hello()],
            message="hello",
            verify=meanwhile,
            max_attempts=3,
            sleep=lambda _: None,
        )
    assert "still non-fast-forward after 3 attempts" in str(caught.value)
    assert "hint: raise gitops.max_push_attempts" in str(caught.value)
    assert "hello" not in log(remote)


def test_protected_branch_hook_rejects_at_once_and_nothing_changes(remote: Path) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'GH006: Protected branch update failed for refs/heads/main.' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    before = git("rev-parse", "main", cwd=remote)
    waits: list[float] = []
    with pytest.raises(PushRejectedError) as caught:
        update_manifest(str(remote), "main", [hello()], message="x", sleep=waits.append)
    message = str(caught.value)
    assert message.startswith(f"push of 'main' to {remote} was rejected: pre-receive hook declined")
    assert "GH006: Protected branch update failed for refs/heads/main." in message
    assert "hint: the branch may be protected" in message
    assert waits == []
    assert git("rev-parse", "main", cwd=remote) == before


@pytest.mark.parametrize(
    ("text", "problem"),
    [("images: [\n", "is not valid YAML"), ("- a\n", "is not a YAML mapping")],
)
def test_malformed_manifest_leaves_remote_untouched(
    remote: Path, tmp_path: Path, text: str, problem: str
) -> None:
    other = tmp_path / "break"
    git("clone", "-q", str(remote), str(other))
    (other / STAGING).write_text(text)
    git("commit", "-q", "-am", "broken", cwd=other)
    git("push", "-q", "origin", "HEAD:main", cwd=other)
    before = git("rev-parse", "main", cwd=remote)
    with pytest.raises(ManifestError, match=problem) as caught:
        update_manifest(str(remote), "main", [hello()], message="x")
    assert str(caught.value).startswith(f"{STAGING}: ")
    assert git("rev-parse", "main", cwd=remote) == before


def test_missing_file_names_path_branch_and_remote(remote: Path) -> None:
    edit = FileEdit("apps/nope/kustomization.yaml", ImageEdit("hello", None, "v1", None))
    with pytest.raises(ManifestError) as caught:
        update_manifest(str(remote), "main", [hello(), edit], message="x")
    assert str(caught.value) == (
        f"apps/nope/kustomization.yaml: does not exist on branch 'main' of {remote}\n"
        "  hint: check the environment's path in gitops.environments"
    )
    assert log(remote) == ["seed"]


def test_failing_verification_pushes_nothing(remote: Path) -> None:
    def refuse(root: Path) -> None:
        assert (root / STAGING).read_text().count(SHA) == 1  # the edit is applied there
        raise ManifestError(STAGING, "no container uses image 'hello'")

    with pytest.raises(ManifestError, match="no container uses image 'hello'"):
        update_manifest(str(remote), "main", [hello()], message="x", verify=refuse)
    assert log(remote) == ["seed"]


def test_push_branch_starts_from_the_base_branch(remote: Path) -> None:
    result = update_manifest(
        str(remote), "main", [hello()], message="promote", push_branch="promote/x"
    )
    assert result.branch == "promote/x"
    assert git("log", "--format=%s", "promote/x", cwd=remote).splitlines() == ["promote", "seed"]
    assert log(remote) == ["seed"]


def test_missing_branch_and_unreachable_remote(remote: Path, tmp_path: Path) -> None:
    with pytest.raises(CommandFailedError) as caught:
        update_manifest(str(remote), "nope", [hello()], message="x")
    assert "Remote branch nope not found" in str(caught.value)
    assert "hint: check gitops.branch" in str(caught.value)
    with pytest.raises(UnreachableError) as unreachable:
        update_manifest(str(tmp_path / "missing.git"), "main", [hello()], message="x")
    assert "missing.git' does not exist" in str(unreachable.value)
    with pytest.raises(UnreachableError):
        update_manifest("http://127.0.0.1:9/x.git", "main", [hello()], message="x")


def test_temporary_clone_is_removed(remote: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    update_manifest(str(remote), "main", [hello()], message="x", workdir=work)
    with pytest.raises(ManifestError):
        update_manifest(
            str(remote), "main", [FileEdit("nope.yaml", hello().editor)], message="x", workdir=work
        )
    assert list(work.iterdir()) == []


def test_crlf_manifest_keeps_crlf_through_git(remote: Path, tmp_path: Path) -> None:
    other = tmp_path / "crlf"
    git("clone", "-q", str(remote), str(other))
    (other / STAGING).write_bytes((other / STAGING).read_bytes().replace(b"\n", b"\r\n"))
    git("commit", "-q", "-am", "crlf", cwd=other)
    git("push", "-q", "origin", "HEAD:main", cwd=other)
    update_manifest(str(remote), "main", [hello()], message="x")
    raw = subprocess.run(
        ["git", "show", f"main:{STAGING}"], cwd=remote, capture_output=True, check=True
    ).stdout
    assert raw.count(b"\r\n") == raw.count(b"\n")
    assert SHA.encode() in raw
