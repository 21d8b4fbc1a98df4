"""The source revision a run builds: the full git SHA that tags the image."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.errors import ConfigError, ToolMissingError
from conveyor.process import ProcessResult, run, run_process

_SHA = re.compile(r"^[0-9a-f]{40}$")
# CI systems name the commit under test; the first one set wins.
SHA_VARIABLES = ("CONVEYOR_SOURCE_SHA", "GITHUB_SHA", "CI_COMMIT_SHA")


def resolve_sha(source: Path, env: Mapping[str, str] | None = None) -> str:
    """The full commit SHA of ``source`` (from CI variables, else ``git rev-parse HEAD``).

    Raises:
        ConfigError: the value is not a full 40-hex SHA, or ``source`` is not a git checkout.
    """
    env = os.environ if env is None else env
    for name in SHA_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            if not _SHA.match(value):
                raise ConfigError(
                    None,
                    name,
                    f"{value!r} is not a full 40-character git SHA",
                    hint="images are tagged with the full commit SHA; pass the full one",
                )
            return value
    completed = run(
        ["git", "-C", str(source), "rev-parse", "--verify", "HEAD^{commit}"],
        timeout=60,
        check=False,
        install_hint="install git, e.g. 'apt-get install git'",
    )
    sha = completed.stdout.strip()
    if not completed.ok or not _SHA.match(sha):
        raise ConfigError(
            source,
            "app.source",
            "is not a git checkout with a commit, so there is no SHA to tag the image with",
            hint="commit the source, or set CONVEYOR_SOURCE_SHA to the full commit SHA",
        )
    return sha


async def source_epoch(source: Path, sha: str, env: Mapping[str, str] | None = None) -> int | None:
    """The time of commit ``sha`` in seconds since the epoch: what a reproducible build uses.

    ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) wins when set;
    else the committer time ``git`` records for ``sha`` in ``source``.

    Returns:
        The time, or ``None`` when neither is known (no git, the commit is not
        in ``source``): the build then keeps the wall clock.

    Raises:
        ConfigError: ``SOURCE_DATE_EPOCH`` is set but is not a whole number of seconds.
    """
    env = os.environ if env is None else env
    value = env.get("SOURCE_DATE_EPOCH", "").strip()
    if value:
        if not value.isdigit():
            raise ConfigError(
                None,
                "SOURCE_DATE_EPOCH",
                f"{value!r} is not a whole number of seconds since 1970-01-01",
                hint="set it to the commit time, e.g. $(git log -1 --format=%ct)",
            )
        return int(value)
    try:
        shown = await run_process(
            ["git", "-C", str(source), "show", "-s", "--format=%ct", f"{sha}^{{commit}}", "--"],
            check=False,
        )
    except ToolMissingError:
        return None
    text = shown.stdout.strip()
    return int(text) if shown.ok and text.isdigit() else None


async def unpublishable(context: Path, dockerfile: str, sha: str) -> str | None:
    """Why an image built from ``context`` now must not be pushed as commit ``sha``, or ``None``.

    The image is tagged, labelled and pinned as ``sha``, and a pushed tag is
    never overwritten: an image holding edits that are not in ``sha`` would
    stand for that commit for good (a later clean build of it would find the
    tag taken, or reuse the edited image).  So the build records, here, whether
    its context is ``sha`` exactly:

    * the checkout's ``HEAD`` is ``sha`` (a CI variable may name the commit);
    * no tracked file under the context, or the Dockerfile, differs from
      ``HEAD`` (staged or not).

    Untracked files are not counted (CI caches often live in the checkout; a
    ``.dockerignore`` keeps them out of the image).  A context that is not in a
    git checkout cannot be told apart: only a CI variable can have named its
    commit, and that is trusted (``None``); so is one where git is not
    installed (a Dagger module's runtime, called with the SHA as an argument).
    """
    try:
        status = await status_of(context, dockerfile)
    except ToolMissingError:  # no git where the build runs (a Dagger module's runtime)
        return None
    if not status.ok:
        if "not a git repository" in status.stderr:
            return None
        return f"git could not tell whether {context} is commit {sha}: {status.stderr.strip()}"
    head, changed = parse_status(status.stdout)
    return None if head is None else refusal(head, changed, sha)


def refusal(head: str, changed: Sequence[str], sha: str) -> str | None:
    """Why a checkout at ``head`` with ``changed`` files is not commit ``sha``, or ``None``."""
    if head != sha:
        return f"the checkout is at {head}, not at {sha}, the commit the image is tagged with"
    if not changed:
        return None
    more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
    return f"the source has uncommitted changes to {', '.join(changed[:5])}{more}"


def parse_status(text: str) -> tuple[str | None, list[str]]:
    """``HEAD``'s SHA (``None`` before the first commit) and the changed paths of a status.

    ``text`` is ``git status --porcelain=v2 -z --branch`` output: ``# branch.oid``
    headers, then one NUL-ended entry per changed path (a rename's entry is
    followed by its original path, which is skipped).
    """
    head: str | None = None
    changed: list[str] = []
    fields = iter(text.split("\0"))
    for field in fields:
        if field.startswith("# branch.oid "):
            oid = field.removeprefix("# branch.oid ")
            head = oid if _SHA.match(oid) else None
        elif field[:2] in ("1 ", "u "):
            changed.append(field.split(" ", 8 if field[0] == "1" else 10)[-1])
        elif field.startswith("2 "):
            changed.append(field.split(" ", 9)[-1])
            next(fields, None)
    return head, changed


async def status_of(context: Path, dockerfile: str) -> ProcessResult:
    """``git status`` of the tracked files under ``context`` and of its Dockerfile."""
    return await run_process(
        [
            "git",
            "-C",
            str(context),
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--untracked-files=no",
            "--",
            ".",
            dockerfile,
        ],
        check=False,
        name="git status",
    )
