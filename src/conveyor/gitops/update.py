"""Race-safe updates of a manifest repository, and reads of what it holds.

API (synchronous; wrap with ``anyio.to_thread.run_sync``)::

    update_manifest(
        repo, branch, edits, *, message, author=Author(), auth=None,
        max_attempts=20, backoff=Backoff(), push_branch=None, verify=None,
        workdir=None, sleep=pause, sparse=None, ordering=None, publish=None,
    ) -> UpdateResult

    read_image(repo, branch, path, name, *, auth=None) -> ImageEntry | None
    image_history(repo, branch, path, name, *, auth=None, limit=10, depth=32)
        -> list[HistoryEntry]

``update_manifest`` shallow-clones the one branch into a temporary directory,
checking out only what the update needs (a sparse, cone-mode checkout: the
edited files' directories, plus the kustomize closure of each directory named
in ``sparse``; see :mod:`conveyor.gitops.worktree` and
:mod:`conveyor.gitops.closure`), so an update in a repository of thousands of
apps writes tens of files.  It
applies every :class:`~conveyor.gitops.edit.FileEdit`, and - unless nothing
changed (no empty commits) - makes one commit and pushes it.  When the push is
refused as non-fast-forward it fetches the new tip, resets to it, re-applies
the edits and tries again with jittered exponential backoff; it never forces.
If an edited image was changed on the remote since the first clone to a value
that is neither the original nor ours, it raises :class:`PushConflictError`;
a hook, protected branch or credential refusal raises
:class:`PushRejectedError` at once.  All edits land in one commit or none do.
With ``ordering`` the value found at each tip is judged instead: older than
ours, the edits are re-applied over it; newer, the update ends without a
commit (``UpdateResult.superseded``).  With ``publish`` the commit is handed
to that function (a promotion branch) instead of the race-safe push.
Every file is read and written inside the clone (see :mod:`.paths`).

Application code does not call this directly: every write to the manifest
repository goes through :func:`conveyor.gitops.writer.write_environment`,
which adds the render and policy checks.

``path`` in the read functions is an environment directory (an overlay);
its kustomization file is found as kustomize would, in the object store of a
clone that writes no work tree.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.encoding import manifest_text
from conveyor.errors import ManifestError, PushConflictError, PushRejectedError
from conveyor.gitops.closure import read_kustomization
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.git import Git, GitAuth, PushOutcome
from conveyor.gitops.kustomization import KUSTOMIZATION_NAMES, ImageEdit, ImageEntry, find_image
from conveyor.gitops.paths import writable
from conveyor.gitops.worktree import SparseTree
from conveyor.process import pause


@dataclass(frozen=True)
class Author:
    """The identity of the commits Conveyor makes."""

    name: str = "Conveyor"
    email: str = "conveyor@localhost"


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff between push attempts (seconds)."""

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """How long to wait after the ``attempt``-th refused push (1-based)."""
        ceiling = min(self.maximum, self.initial * self.factor ** (attempt - 1))
        return self.rng.uniform(0, ceiling)


@dataclass(frozen=True)
class UpdateResult:
    """What an update did.

    Attributes:
        commit: The pushed commit, or ``None`` when nothing had to change.
        changed: Whether a commit was pushed.
        attempts: Push attempts made (1 when the first push landed).
        previous: The image value the first image edit found in the file at the
            first clone (``None``: no such entry, or no image edits).
        previous_values: That value for every edit, in order.
        branch: The branch pushed to.
        superseded: The newer value ``ordering`` found pinned (nothing was
            committed), ``None`` otherwise.
        tree: The tree of ``commit`` when it was pushed to ``branch`` (the
            work tree ``verify`` saw last, as committed), ``None`` otherwise.
    """

    commit: str | None
    changed: bool
    attempts: int
    previous: str | None
    previous_values: tuple[str | None, ...]
    branch: str
    superseded: str | None = None
    tree: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One value an environment's image had, and the commit that set it."""

    commit: str
    date: str
    author: str
    subject: str
    image: ImageEntry | None


def _read(root: Path, edit: FileEdit, repo: str, branch: str) -> str:
    file = writable(root, edit.path)  # every file read here is one to edit
    try:
        # bytes, decoded: text mode would turn CRLF into LF
        return manifest_text(file.read_bytes(), edit.path)
    except FileNotFoundError:
        raise ManifestError(
            edit.path,
            f"does not exist on branch {branch!r} of {repo}",
            hint="check the environment's path in gitops.environments",
        ) from None
    except UnicodeDecodeError as error:
        raise ManifestError(edit.path, f"is not UTF-8 text: {error}") from error


def _apply(
    root: Path,
    edits: Sequence[FileEdit],
    originals: Sequence[str | None],
    remote: str,
    branch: str,
    *,
    conflicts: bool = True,
) -> bool:
    changed = False
    for edit, original in zip(edits, originals, strict=True):
        text = _read(root, edit, remote, branch)
        theirs = edit.editor.current(text, edit.path)
        if conflicts and theirs != original and theirs is not None:
            ours = edit.editor.target(text, edit.path)
            if theirs != ours:
                raise PushConflictError(edit.path, _image_label(edit), theirs, ours)
        new = edit.editor.apply(text, edit.path)
        if new != text:
            writable(root, edit.path).write_bytes(new.encode("utf-8"))
            changed = True
    return changed


def _newer_pinned(
    ordering: Callable[[str | None], bool] | None,
    root: Path,
    edits: Sequence[FileEdit],
    remote: str,
    branch: str,
) -> str | None:
    """A value pinned at this tip that ``ordering`` says is newer, else ``None``.

    Judged: every kustomization ``images:`` edit (several images pinned in
    one commit: any one newer stops the whole update, so no image moves
    back), or the first edit when there is none.
    """
    if ordering is None:
        return None
    judged = [edit for edit in edits if isinstance(edit.editor, ImageEdit)] or [edits[0]]
    for edit in judged:
        pinned = edit.editor.current(_read(root, edit, remote, branch), edit.path)
        if not ordering(pinned):
            return pinned or ""
    return None


def _clone(git: Git, root: Path, branch: str, tree: SparseTree | None) -> None:
    if tree is None:
        git.clone(root, branch, depth=1)
    else:
        git.clone(root, branch, depth=1, checkout=False)
        tree.limit()


def _image_label(edit: FileEdit) -> str:
    for attribute in ("name", "policy", "key_path"):
        value = getattr(edit.editor, attribute, None)
        if value is not None:
            return ".".join(value) if isinstance(value, tuple) else str(value)
    return edit.path


def update_manifest(
    repo: str,
    branch: str,
    edits: Sequence[FileEdit],
    *,
    message: str,
    author: Author | None = None,
    auth: GitAuth | None = None,
    max_attempts: int = 20,
    backoff: Backoff | None = None,
    push_branch: str | None = None,
    verify: Callable[[Path], None] | None = None,
    workdir: Path | None = None,
    sleep: Callable[[float], None] = pause,
    sparse: Sequence[str] | None = None,
    ordering: Callable[[str | None], bool] | None = None,
    publish: Callable[[Git, Path, str], str] | None = None,
) -> UpdateResult:
    """Apply ``edits`` to ``branch`` of ``repo`` in one commit and push it race-safely.

    The work tree holds only the directories of the edited files, plus - when
    ``sparse`` names directories - what rendering each of them with kustomize
    reads (its closure, computed from the object store before any checkout).
    Without ``sparse`` but with a ``verify`` callback every file is checked
    out, as ``verify`` may read anything.  If ``verify`` raises
    :class:`ManifestError` with a sparse work tree, every file is checked out
    and ``verify`` runs once more: a layout the closure misses costs time,
    never a wrong failure.

    Args:
        repo: URL or path of the manifest repository.
        branch: The branch to clone (and to push to unless ``push_branch``).
        edits: What to change; paths are relative to the repository root.
        message: The commit message.
        author: Commit author and committer.
        auth: Credentials (token or SSH key).
        max_attempts: Push attempts before giving up.
        backoff: Waits between attempts.
        push_branch: Push to this branch instead (e.g. a promotion branch for a
            pull request); it is created from ``branch``'s tip.
        verify: Called with the work tree after the edits and before the
            commit; raise a :class:`ConveyorError` to abandon the update.
        workdir: Where to make the temporary clone (system temp by default).
        sleep: The wait function (tests pass a recorder); the default ends
            at once when the run is cancelled.
        sparse: Directories (relative to the repository root) that ``verify``
            needs besides the edited files' own, each with its kustomize
            closure - e.g. the environment's overlay that ``verify`` renders.
            ``[]``: only the edited files' directories.
        ordering: Judges the value each image edit's file holds at each tip
            (first clone and every re-fetch): ``True`` to apply the edits over
            it, ``False`` when it is newer than ours (end without a commit).
            Replaces the conflict check.  It may raise to refuse.
        publish: Pushes the commit instead of the race-safe push to the
            branch (called with the git runner, the work tree and the commit;
            returns the commit the remote branch holds), once.

    Returns:
        The commit pushed (or ``None`` when the edits changed nothing).

    Raises:
        ManifestError: a file is missing or malformed (nothing pushed).
        PushConflictError: the same image was set to another value meanwhile.
        PushRejectedError: a hook, protected branch or credentials refused the
            push, or it stayed non-fast-forward for ``max_attempts``.
        UnreachableError: the remote did not answer.
    """
    if not edits:
        raise ValueError("update_manifest needs at least one edit")
    author = author or Author()
    backoff = backoff or Backoff()
    target = push_branch or branch
    git = Git(repo, auth=auth)
    temp = Path(tempfile.mkdtemp(prefix="conveyor-manifests-", dir=workdir))
    root = temp / "repo"
    # with a verify callback and no word on what it reads, it may read anything
    tree = None
    if sparse is not None or verify is None:
        tree = SparseTree(git, root, [edit.path for edit in edits], sparse or ())
    try:
        # one cat-file process answers every read of the clone's objects
        with git.reading(root):
            _clone(git, root, branch, tree)
            # the one finder names each directory's kustomization file, now checked out
            edits = [edit.locate(root) for edit in edits]
            originals = tuple(
                edit.editor.current(_read(root, edit, git.shown_remote, branch), edit.path)
                for edit in edits
            )
            previous = next((value for value in originals if value is not None), None)
            for attempt in range(1, max_attempts + 1):
                newer = _newer_pinned(ordering, root, edits, git.shown_remote, branch)
                if newer is not None:
                    return UpdateResult(None, False, attempt, previous, originals, target, newer)
                changed = _apply(
                    root, edits, originals, git.shown_remote, branch, conflicts=ordering is None
                )
                if verify is not None:
                    _verify(verify, root, tree)
                # the edits know whether they changed a byte: no 'git status' over a big tree
                if not changed:
                    return UpdateResult(None, False, attempt, previous, originals, target)
                made = git.commit(
                    root,
                    sorted({edit.path for edit in edits}),
                    message,
                    name=author.name,
                    email=author.email,
                )
                if publish is not None:
                    held = publish(git, root, made.sha)
                    return UpdateResult(held, True, attempt, previous, originals, target)
                outcome = git.push(root, target)
                if outcome is not PushOutcome.NON_FAST_FORWARD:
                    return UpdateResult(
                        made.sha, True, attempt, previous, originals, target, tree=made.tree
                    )
                if attempt == max_attempts:
                    break
                sleep(backoff.delay(attempt))
                tip = git.fetch(root, target if push_branch else branch, depth=1)
                git.reset_hard(root, tip)  # keeps the sparse limit
                if tree is not None:
                    tree.follow()
            raise PushRejectedError(
                git.shown_remote,
                target,
                f"the branch kept moving: still non-fast-forward after {max_attempts} attempts",
                hint="raise gitops.max_push_attempts, or re-run when fewer pipelines push at once",
            )
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _verify(verify: Callable[[Path], None], root: Path, tree: SparseTree | None) -> None:
    try:
        verify(root)
    except ManifestError:
        # a render may have missed a file the closure did not follow: try with all of them
        if tree is None or not tree.widen():
            raise
        verify(root)


def read_image(
    repo: str, branch: str, path: str, name: str, *, auth: GitAuth | None = None
) -> ImageEntry | None:
    """The ``images:`` entry for ``name`` in environment directory ``path`` at the branch tip.

    The clone writes no work tree: the file is read from the object store.

    Raises:
        ManifestError: no kustomization at ``path``, or it is malformed.
    """
    git = Git(repo, auth=auth)
    with tempfile.TemporaryDirectory(prefix="conveyor-read-") as temp:
        root = Path(temp) / "repo"
        git.clone(root, branch, depth=1, checkout=False)
        file, text = read_kustomization(git, root, path)
        return find_image(text, name, file)


def image_history(
    repo: str,
    branch: str,
    path: str,
    name: str,
    *,
    auth: GitAuth | None = None,
    limit: int = 10,
    depth: int = 32,
) -> list[HistoryEntry]:
    """The values image ``name`` had in environment ``path``, newest first.

    Each entry is the commit that introduced a value (consecutive commits that
    left it unchanged are folded).  The clone starts ``depth`` commits deep
    and is deepened only until ``limit`` values are known or history ends; it
    writes no work tree (every version is read from the object store).

    Raises:
        ManifestError: no kustomization at ``path`` at the branch tip.
    """
    git = Git(repo, auth=auth)
    with tempfile.TemporaryDirectory(prefix="conveyor-history-") as temp:
        root = Path(temp) / "repo"
        git.clone(root, branch, depth=depth, checkout=False)
        with git.reading(root):  # one cat-file process between two deepenings
            file, _ = read_kustomization(git, root, path)
            while True:
                shallow = git.is_shallow(root)
                runs = _runs(git, root, file, name)
                # in a shallow clone the oldest visible commit may only look like
                # it set its value (its parent is missing): it is not yet known
                complete = runs[:-1] if shallow else runs
                if len(complete) >= limit or not shallow:
                    return complete[:limit]
                git.deepen(root, branch, depth)
                depth *= 2


def _runs(git: Git, root: Path, file: str, name: str) -> list[HistoryEntry]:
    log = git.run(["log", "--format=%H%x1f%aI%x1f%an%x1f%s", "HEAD", "--", file], cwd=root).stdout
    commits = [line.split("\x1f") for line in log.splitlines() if line]
    if not commits:
        return []
    blobs = git.objects(root, [f"{sha}:{file}" for sha, *_ in commits])
    texts = [
        None if blob is None else manifest_text(blob.data, f"{sha[:12]}:{file}")
        for blob, (sha, *_) in zip(blobs, commits, strict=True)
    ]
    values: list[ImageEntry | None] = []
    for (sha, *_), text in zip(commits, texts, strict=True):
        try:
            values.append(None if text is None else find_image(text, name, f"{sha[:12]}:{file}"))
        except ManifestError:
            values.append(None)  # a malformed past version: it set no readable image
    runs: list[HistoryEntry] = []
    for i, (sha, date, who, subject) in enumerate(commits):
        older = values[i + 1] if i + 1 < len(values) else object()
        if values[i] != older:
            runs.append(HistoryEntry(sha, date, who, subject, values[i]))
    return runs


__all__ = [
    "KUSTOMIZATION_NAMES",
    "Author",
    "Backoff",
    "HistoryEntry",
    "UpdateResult",
    "image_history",
    "read_image",
    "update_manifest",
]
