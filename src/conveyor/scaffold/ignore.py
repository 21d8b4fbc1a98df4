"""``.conveyor/`` kept out of git and out of every build context.

Each ``conveyor run`` records itself under ``.conveyor/runs/`` next to the
configuration (spans, artifacts, leftovers of a run cut short), which must
never be committed nor copied into an image by ``COPY . /app``. ``conveyor
init`` adds the pattern to the repository's ``.gitignore`` and to the build
context's ``.dockerignore`` (and to its ``.containerignore`` when there is one:
Podman and Buildah read that file instead), creating a file that is missing
and leaving a file that already ignores the directory as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

from conveyor.errors import ScaffoldError
from conveyor.scaffold.repository import RepositoryFacts

PATTERN = ".conveyor/"
ACTION = f"added {PATTERN} to"
_COMMENT = "# Conveyor's run records (conveyor run), never committed nor built into an image"
# a line that already ignores the directory: .conveyor, .conveyor/, /.conveyor/, **/.conveyor ...
_IGNORES = re.compile(r"^\s*(\*\*/|/)?\.conveyor/?(\*\*?)?\s*$")


def ignore_files(facts: RepositoryFacts) -> list[Path]:
    """The files that must ignore ``.conveyor/``: .gitignore, .dockerignore (, .containerignore)."""
    files = [facts.toplevel / ".gitignore", facts.directory / ".dockerignore"]
    if (facts.directory / ".containerignore").is_file():
        files.append(facts.directory / ".containerignore")
    return files


def with_pattern(text: str) -> str | None:
    """``text`` with the pattern appended, or None when it already ignores ``.conveyor/``."""
    if any(_IGNORES.match(line) for line in text.splitlines()):
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    if text:
        text += "\n"
    return f"{text}{_COMMENT}\n{PATTERN}\n"


def read_ignore_file(path: Path) -> str:
    """The file's text ("" when it does not exist).

    Raises:
        ScaffoldError: it exists but is a directory or cannot be read as UTF-8 text.
    """
    if not path.exists():
        return ""
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "is not UTF-8 text"
        raise ScaffoldError(
            path,
            f"cannot be read ({problem}); nothing was written",
            hint=f"add the line {PATTERN} to it yourself, or fix the file, then run init again",
        ) from exc
