"""``.conveyor/`` kept out of git and out of every build context.

Each ``conveyor run`` records itself under ``.conveyor/runs/`` next to the
configuration (spans, artifacts, leftovers of a run cut short), which must
never be committed nor copied into an image by ``COPY . /app``. ``conveyor
init`` adds the pattern to the repository's ``.gitignore`` and to each build
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
#: For a build context above conveyor.toml: .dockerignore patterns match from the context's root.
NESTED_PATTERN = "**/.conveyor/"
_COMMENT = "# Conveyor's run records (conveyor run), never committed nor built into an image"
# a line that already ignores the directory: .conveyor, .conveyor/, /.conveyor/, **/.conveyor ...
_IGNORES = re.compile(r"^\s*(\*\*/|/)?\.conveyor/?(\*\*?)?\s*$")
_IGNORES_NESTED = re.compile(r"^\s*\*\*/\.conveyor/?(\*\*?)?\s*$")


def ignore_files(facts: RepositoryFacts) -> list[tuple[Path, str]]:
    """The files that must ignore ``.conveyor/``, each with the pattern it needs.

    The repository's .gitignore, and the .dockerignore (and ``.containerignore``
    when there is one) of each build context that holds ``.conveyor/``: the
    directory of conveyor.toml, or one above it that a compose file names (the
    repository root), where only ``**/.conveyor/`` reaches the run records.
    A context below conveyor.toml (a monorepo's service) never holds them.
    """
    files = [(facts.toplevel / ".gitignore", PATTERN)]
    for image in facts.images:
        context = (facts.directory / image.context).resolve()
        if not facts.directory.is_relative_to(context) or not context.is_relative_to(
            facts.toplevel
        ):
            continue  # .conveyor/ is not inside this context (or it is not the repository's)
        pattern = PATTERN if context == facts.directory else NESTED_PATTERN
        for name in (".dockerignore", ".containerignore"):
            path = context / name
            known = [known for known, _ in files]
            if path not in known and (name == ".dockerignore" or path.is_file()):
                files.append((path, pattern))
    return files


def with_pattern(text: str, pattern: str = PATTERN) -> str | None:
    """``text`` with ``pattern`` appended, or None when it already ignores ``.conveyor/``."""
    ignores = _IGNORES if pattern == PATTERN else _IGNORES_NESTED
    if any(ignores.match(line) for line in text.splitlines()):
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    if text:
        text += "\n"
    return f"{text}{_COMMENT}\n{pattern}\n"


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
