"""The source revision a run builds: the full git SHA that tags the image."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from conveyor.errors import ConfigError, ToolMissingError
from conveyor.process import run, run_process

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
