"""Paths of a manifest repository's clone: every read and write stays inside it.

API:
    ``inside(root, relative) -> Path``: the file ``relative`` names in the work
    tree at ``root``, refused when it (or a directory on the way) is a
    symbolic link that leads outside the clone.
    ``writable(root, relative) -> Path``: the same, and the file itself is no
    symbolic link at all (an edit through a link would change another file
    than the one committed).

A committed link is only text in the object store; it becomes dangerous once
checked out, when opening the path follows it.  Configured paths that are
absolute or contain ``..`` are refused earlier, when the configuration loads.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from conveyor.errors import ManifestError


def inside(root: Path, relative: str) -> Path:
    """The path ``relative`` names under ``root``; it must resolve inside ``root``.

    Raises:
        ManifestError: a symbolic link on the way leads outside the clone.
    """
    path = root / PurePosixPath(relative)
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ManifestError(
            relative,
            f"is, or lies under, a symbolic link that leads outside the repository "
            f"({_link_text(root, relative)}); refused: nothing was read or written there",
            hint="commit the file itself in the manifest repository, not a link to it",
        )
    return path


def writable(root: Path, relative: str) -> Path:
    """The file ``relative`` under ``root`` to be written: inside the clone, and no link.

    Raises:
        ManifestError: it is a symbolic link, or leads outside the clone.
    """
    path = inside(root, relative)
    if path.is_symlink():
        raise ManifestError(
            relative,
            f"is a symbolic link (to {os.readlink(path)}); Conveyor edits only regular files, "
            "so that the file it writes is the file it commits",
            hint="point the environment at the link's target, or commit the file itself",
        )
    return path


def _link_text(root: Path, relative: str) -> str:
    """``a/b -> target`` for the first link on the way to ``relative``."""
    path = root
    for part in PurePosixPath(relative).parts:
        path = path / part
        if path.is_symlink():
            shown = path.relative_to(root).as_posix()
            return f"{shown} -> {os.readlink(path)}"
    return "a link"
