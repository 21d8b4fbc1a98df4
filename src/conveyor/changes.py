"""Which files a run's commit changed, and whether a stage's ``paths`` were among them.

A monorepo runs only what changed: a stage or an image with ``paths`` runs
when a changed file is under one of them.  The base commit is given
(``--changed-since REF``) or read from what CI says (a pull or merge
request's base, the push's previous commit).  When the changes cannot be
known (no base, a shallow checkout without it, a new branch), every stage
runs: an unknown change is never taken for "nothing changed".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ZERO_SHA = "0" * 40
BASE_VARIABLES = (
    "CONVEYOR_CHANGED_SINCE",
    "CI_MERGE_REQUEST_DIFF_BASE_SHA",
    "CI_COMMIT_BEFORE_SHA",
)
"""Variables naming the base commit, the first set wins (then GitHub's, see :func:`ci_base`)."""


@dataclass(frozen=True)
class Changes:
    """The files changed since ``base`` (paths relative to the repository root).

    ``files is None``: the changes are unknown and everything runs;
    ``reason`` says why.
    """

    base: str | None
    files: frozenset[str] | None
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.files is not None

    def touches(self, paths: Sequence[str]) -> bool:
        """Whether a changed file is ``paths`` or under one of them (always, when unknown)."""
        if self.files is None or not paths:
            return True
        return any(matches(file, pattern) for file in self.files for pattern in paths)

    def skip_reason(self, paths: Sequence[str]) -> str | None:
        """Why a stage with ``paths`` does not run, or ``None`` when it runs."""
        if self.touches(paths):
            return None
        return f"nothing changed under {', '.join(paths)} since {self.base}"


UNKNOWN = Changes(None, None, "no base commit given")


def matches(file: str, pattern: str) -> bool:
    """``file`` is ``pattern``, lies under the directory ``pattern``, or matches its glob."""
    path = PurePosixPath(file)
    clean = pattern.rstrip("/")
    if any(ch in clean for ch in "*?["):
        return path.match(clean) or any(parent.match(clean) for parent in path.parents)
    return file == clean or file.startswith(clean + "/") or clean in {"", "."}


def ci_base(env: Mapping[str, str] | None = None) -> str | None:
    """The commit CI compares this run with, or ``None`` when it says nothing usable.

    GitLab: a merge request's diff base, else the push's previous commit.
    GitHub: a pull request's base branch (``origin/<base>``), else the
    push event's ``before``.  A new branch's all-zero "before" is no base.
    """
    env = os.environ if env is None else env
    for name in (
        "CONVEYOR_CHANGED_SINCE",
        "CI_MERGE_REQUEST_DIFF_BASE_SHA",
        "CI_COMMIT_BEFORE_SHA",
    ):
        value = env.get(name, "").strip()
        if value and value != ZERO_SHA:
            return value
    if env.get("GITHUB_BASE_REF"):
        return f"origin/{env['GITHUB_BASE_REF']}"
    event = env.get("GITHUB_EVENT_PATH")
    if event:
        try:
            before = json.loads(Path(event).read_text(encoding="utf-8")).get("before")
        except (OSError, ValueError, AttributeError):
            return None
        if isinstance(before, str) and before and before != ZERO_SHA:
            return before
    return None


def detect(source: Path, head: str, since: str | None = None) -> Changes:
    """The changes of ``head`` since ``since``, else since the commit CI names."""
    return changed_files(source, since if since is not None else ci_base(), head)


def changed_files(source: Path, base: str | None, head: str) -> Changes:
    """The files changed between ``base`` and ``head`` in the checkout ``source``.

    Compares with the merge base (what a pull request changes), fetching
    the base once when a shallow checkout lacks it.
    """
    if base is None:
        return UNKNOWN
    top = _git(source, "rev-parse", "--show-toplevel")
    if top is None:
        return Changes(base, None, f"{source} is not a git checkout")
    if _git(source, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}") is None:
        _git(source, "fetch", "--quiet", "--depth=100", "origin", base, timeout=120)
    if _git(source, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}") is None:
        return Changes(base, None, f"{base} is not in this checkout (a shallow clone?)")
    # a shallow history may hide the merge base: the plain diff then lists at
    # least every file the branch changed (more runs, never fewer)
    merge_base = _git(source, "merge-base", base, head) or base
    listed = _git(source, "diff", "--name-only", "-z", merge_base, head, "--")
    if listed is None:
        return Changes(base, None, f"git diff {base}...{head} failed")
    prefix = _relative(Path(top), source)
    files = frozenset(_under(listed.split("\0"), prefix))
    return Changes(base, files)


def _relative(top: Path, source: Path) -> str:
    try:
        return source.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        return ""


def _under(files: Iterable[str], prefix: str) -> Iterable[str]:
    """The changed files as paths relative to the configuration's directory."""
    for file in files:
        if not file:
            continue
        if prefix in {"", "."}:
            yield file
        elif file.startswith(prefix + "/"):
            yield file[len(prefix) + 1 :]


def _git(source: Path, *args: str, timeout: float = 60) -> str | None:
    from conveyor.process import run  # noqa: PLC0415 - describing a pipeline starts no process

    done = run(["git", "-C", str(source), *args], timeout=timeout, check=False)
    return done.stdout.strip("\n") if done.ok else None
