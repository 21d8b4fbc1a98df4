"""Which of two source commits is newer: ancestry in the source repository.

API::

    compare(source, ours, pinned) -> Comparison     # ours relative to pinned
    pinned_commit(value) -> str | None              # the source SHA an image value is tagged with

The manifest stage never moves an environment to an older commit: the image
tag is the source commit's full SHA, so the environment's pinned tag names a
commit of the source repository, and ``git merge-base --is-ancestor`` says
whether ours descends from it.  A CI checkout is often shallow (one commit
deep): what it lacks is fetched from its ``origin`` - the pinned commit itself
(with the history down to ours), then deeper history (``--deepen``, doubling),
and at last all of it (``--unshallow``).  When the answer still cannot be
had (no git repository, no such commit anywhere, histories that diverged,
a fetch that fails) the comparison is ``UNKNOWN`` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from conveyor.gitops.git import Git

_SHA = re.compile(r"^[0-9a-f]{40}$")
_DEEPEN_ROUNDS = 4
_FIRST_DEEPEN = 64


class Order(StrEnum):
    """Our commit relative to the pinned one."""

    NEWER = "newer"
    SAME = "same"
    OLDER = "older"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Comparison:
    """The order of two commits, and why it could not be told (``UNKNOWN``)."""

    order: Order
    reason: str = ""


def pinned_commit(value: str | None) -> str | None:
    """The full SHA an image value (``name:tag@digest``) is tagged with, or ``None``."""
    if not value:
        return None
    name = value.partition("@")[0]
    colon = name.rfind(":")
    if colon <= name.rfind("/"):
        return None
    tag = name[colon + 1 :]
    return tag if _SHA.match(tag) else None


def compare(source: Path, ours: str, pinned: str, *, binary: str = "git") -> Comparison:
    """Whether commit ``ours`` is newer or older than ``pinned`` in the repository at ``source``.

    Fetches from the repository's ``origin`` what a shallow checkout lacks.

    Args:
        source: A work tree (or bare repository) of the source.
        ours: The commit being deployed (full SHA).
        pinned: The commit the environment runs (full SHA).
        binary: The git executable.
    """
    if ours == pinned:
        return Comparison(Order.SAME)
    git = _SourceGit(Git(str(source), binary=binary), source)
    # the usual case in one process: ours descends from the pinned commit (a path
    # between the two proves it, in a shallow checkout too); anything else is asked in turn
    if git.ancestor(pinned, ours):
        return Comparison(Order.NEWER)
    if not git.ok(["rev-parse", "--git-dir"]):
        return Comparison(Order.UNKNOWN, f"{source} is not a git repository")
    for sha in (ours, pinned):
        if not git.has(sha):
            git.ok(["fetch", "--quiet", "--no-tags", "origin", sha])
    depth = _FIRST_DEEPEN
    for round_ in range(_DEEPEN_ROUNDS + 2):
        found = _decide(git, source, ours, pinned)
        if found is not None:
            return found
        # a shallow checkout: the history between the two may be cut off
        more = [f"--deepen={depth}"] if round_ < _DEEPEN_ROUNDS else ["--unshallow"]
        if not git.ok(["fetch", "--quiet", "--no-tags", *more, "origin"]):
            return Comparison(
                Order.UNKNOWN,
                f"the source checkout at {source} is shallow and fetching more history from "
                f"origin failed: {git.last_error}",
            )
        depth *= 2
    return Comparison(Order.UNKNOWN, f"the history of {source} could not be completed")


def _decide(git: _SourceGit, source: Path, ours: str, pinned: str) -> Comparison | None:
    """The order, or ``None`` when a shallow checkout needs more history to tell."""
    if git.has(ours) and git.has(pinned):
        if git.ancestor(pinned, ours):
            return Comparison(Order.NEWER)
        if git.ancestor(ours, pinned):
            return Comparison(Order.OLDER)
        if git.shallow():
            return None
        return Comparison(
            Order.UNKNOWN,
            f"neither of {ours[:12]} and {pinned[:12]} descends from the other "
            "(the histories diverged)",
        )
    if git.shallow():
        return None
    missing = ours if not git.has(ours) else pinned
    return Comparison(
        Order.UNKNOWN,
        f"commit {missing[:12]} is not in the source repository at {source}, "
        "not even after fetching it from origin",
    )


class _SourceGit:
    """git commands in the source repository, failures as values."""

    def __init__(self, git: Git, cwd: Path) -> None:
        self.git = git
        self.cwd = cwd
        self.last_error = ""

    def ok(self, args: list[str]) -> bool:
        done = self.git.run(args, cwd=self.cwd, check=False)
        if not done.ok:
            self.last_error = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return done.ok

    def has(self, sha: str) -> bool:
        return self.ok(["cat-file", "-e", f"{sha}^{{commit}}"])

    def ancestor(self, older: str, newer: str) -> bool:
        return self.ok(["merge-base", "--is-ancestor", older, newer])

    def shallow(self) -> bool:
        done = self.git.run(["rev-parse", "--is-shallow-repository"], cwd=self.cwd, check=False)
        return done.stdout.strip() == "true"
