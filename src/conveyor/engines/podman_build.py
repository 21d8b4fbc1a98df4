"""What ``podman build`` is given besides the context: the ignore file and a cache-keyed Dockerfile.

Pure functions over text; :meth:`PodmanEngine.build` writes their results to
its scratch directory.

**The layer cache and build arguments.**  Buildah (podman 4.3) keys a cached
layer by its parent and the instruction's text, and the history of an ``ARG``
records names, never values.  So after ``--build-arg GIT_SHA=<new>`` the layer
of ``ENV APP_VERSION=${GIT_SHA}`` is found in the cache and the image keeps a
previous commit's version (containers/buildah#5501).  :func:`keyed_dockerfile`
puts the values into the key: after every ``ARG`` instruction of a stage that
declares a build argument it inserts::

    LABEL io.conveyor.build-args=<sha256 of those arguments' names and values>

A changed value changes that instruction's text, so it and every later layer
of the stage are rebuilt, while the layers before it (``RUN pip install``
above ``ARG GIT_SHA``) are reused.  The label stays in the image: it names no
value, only their digest.  ``ARG`` lines before the first ``FROM`` only feed
``FROM`` lines (a changed base image is a different parent) and get none.

**When the cache cannot help.**  If no ``RUN``, ``COPY`` or ``ADD`` comes
before a stage's first key, every layer worth caching would be rebuilt anyway;
building without intermediate layers (``--layers=false``) is then faster
(one commit instead of one per instruction).  :attr:`KeyedDockerfile.reusable`
says which case it is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

KEY_LABEL = "io.conveyor.build-args"
"""The label whose value is the digest of the build arguments a stage declared."""
RUN_STORE = ".conveyor"
"""Conveyor's run store and scratch space: never part of a build context."""
CONTEXT_EXCLUDE = (RUN_STORE, f"**/{RUN_STORE}")
"""Ignore patterns (``.dockerignore`` syntax) every build context gets, on every engine."""
IGNORE_FILES = (".containerignore", ".dockerignore")
"""The context's own ignore files, in the order podman looks for them."""

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_CACHED_WORK = frozenset({"RUN", "COPY", "ADD"})


@dataclass(frozen=True)
class KeyedDockerfile:
    """A Dockerfile whose layer-cache keys include its build arguments' values.

    Attributes:
        text: The Dockerfile to build with.
        reusable: Whether some layer worth caching (``RUN``/``COPY``/``ADD``)
            precedes a stage's first key, i.e. whether ``--layers`` can save work.
    """

    text: str
    reusable: bool


def ignore_file(context_ignore: str | None) -> str:
    """The ignore file for a build: the context's own patterns, then :data:`CONTEXT_EXCLUDE`.

    The run store comes last so that no ``!pattern`` of the user's file can
    bring it back (the last matching pattern wins).

    Args:
        context_ignore: The text of the context's ``.containerignore`` or
            ``.dockerignore``; ``None`` when it has neither.
    """
    lines = [context_ignore.rstrip("\n")] if context_ignore else []
    lines += ["# added by Conveyor: its run store is never built into an image", *CONTEXT_EXCLUDE]
    return "\n".join(lines) + "\n"


def keyed_dockerfile(text: str, build_args: Mapping[str, str]) -> KeyedDockerfile:
    """``text`` with a :data:`KEY_LABEL` instruction after each ``ARG`` that declares a build arg.

    Args:
        text: The Dockerfile as written.
        build_args: The build arguments passed to the build.

    Returns:
        The Dockerfile to build and whether the layer cache can save work.
    """
    escape = _escape_character(text)
    out: list[str] = []
    reusable = False
    in_stage = keyed = False
    for instruction, lines in _instructions(text.splitlines(), escape):
        out += lines
        if instruction == "FROM":
            in_stage, keyed = True, False
        elif instruction in _CACHED_WORK and in_stage and not keyed:
            reusable = True
        elif instruction == "ARG" and in_stage:
            declared = _declared_args(lines, escape)
            values = {name: build_args[name] for name in declared if name in build_args}
            if values:
                out.append(f"LABEL {KEY_LABEL}={_digest(values)}")
                keyed = True
    return KeyedDockerfile("\n".join(out) + "\n", reusable)


def _escape_character(text: str) -> str:
    """The escape character set by a ``# escape=`` parser directive (default ``\\``)."""
    for line in text.splitlines():
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            break  # directives end at the first line that is not one
        if match.group(1).lower() == "escape" and match.group(2) in ("`", "\\"):
            return match.group(2)
    return "\\"


def _instructions(lines: Sequence[str], escape: str) -> list[tuple[str | None, list[str]]]:
    """The physical lines grouped by instruction: (keyword or None for comments/blanks, lines)."""
    groups: list[tuple[str | None, list[str]]] = []
    current: list[str] | None = None
    for line in lines:
        stripped = line.strip()
        if current is not None:
            current.append(line)
            # Comment lines inside a continued instruction are dropped by the parser.
            if stripped.startswith("#") or stripped.endswith(escape):
                continue
            current = None
            continue
        if not stripped or stripped.startswith("#"):
            groups.append((None, [line]))
            continue
        keyword = stripped.split(None, 1)[0].upper()
        group = [line]
        groups.append((keyword, group))
        if stripped.endswith(escape):
            current = group
    return groups


def _declared_args(lines: Sequence[str], escape: str) -> list[str]:
    """The names an ``ARG`` instruction declares (``ARG A=1 B`` declares A and B)."""
    words: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#") and words:
            continue
        words += stripped.removesuffix(escape).split()
    return [word.split("=", 1)[0] for word in words[1:]]


def _digest(values: Mapping[str, str]) -> str:
    encoded = json.dumps(dict(sorted(values.items())), separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()
