"""The repository's Dockerfiles: which images there are, the port each serves, what it proves.

``conveyor init`` proposes one ``[images.<name>]`` per directory holding a
Dockerfile when there are several, the smoke port from ``EXPOSE`` and a
smoke contract the service can meet: the version is proven only when the
app visibly serves ``/version`` and is told its commit (``GIT_SHA``, the
build argument Conveyor always passes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")
#: Directories never searched: dependencies, virtualenvs, build output, VCS and run records.
SKIPPED_DIRS = frozenset(
    {".git", ".conveyor", "node_modules", "vendor", ".venv", "venv", "dist", "build", "target"}
)
SOURCE_SUFFIXES = frozenset({".py", ".js", ".mjs", ".cjs", ".ts", ".go", ".rb", ".java", ".rs"})
_MAX_SOURCE_FILES = 2000
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(\d+)", re.MULTILINE | re.IGNORECASE)
_VERSION_ROUTE = re.compile(r"""["'`]/version["'`/]""")
_HEALTH_ROUTE = re.compile(r"""["'`](/healthz?|/livez|/readyz|/ping)["'`]""")
_GIT_SHA = re.compile(r"\bGIT_SHA\b")
_IMAGE_NAME_INVALID = re.compile(r"[^a-z0-9-]+")


#: Directories whose Dockerfiles are not the application's images (tooling, tests, examples).
NOT_IMAGES = frozenset({"tests", "test", "testdata", "fixtures", "examples", "docs", "e2e"})


def walk(
    directory: Path, depth: int = 4, skip: frozenset[str] = SKIPPED_DIRS, hidden: bool = True
) -> Iterator[Path]:
    """Files under ``directory`` down to ``depth`` levels, skipping ``skip``, sorted.

    ``hidden = False`` skips every directory whose name starts with a dot too.
    """
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink():
            continue
        if entry.is_dir():
            wanted = entry.name not in skip and (hidden or not entry.name.startswith("."))
            if depth > 0 and wanted:
                yield from walk(entry, depth - 1, skip, hidden)
        elif entry.is_file():
            yield entry


def find_dockerfiles(directory: Path) -> list[Path]:
    """Every Dockerfile (or Containerfile) under ``directory``, one per directory, sorted.

    Hidden directories (``.devcontainer``) and tests, fixtures, examples and
    docs are not searched: their Dockerfiles are tooling, not images to deliver.
    """
    found: dict[Path, Path] = {}
    for path in walk(directory, skip=SKIPPED_DIRS | NOT_IMAGES, hidden=False):
        if path.name in DOCKERFILE_NAMES:
            found.setdefault(path.parent, path)
    return [found[key] for key in sorted(found)]


def image_name(directory: Path, root: Path) -> str:
    """A valid ``[images.<name>]`` key made from the Dockerfile's directory name."""
    name = directory.name if directory != root else root.name
    cleaned = _IMAGE_NAME_INVALID.sub("-", name.lower()).strip("-")
    return cleaned or "app"


def exposed_port(dockerfile: Path) -> int | None:
    """The first port ``EXPOSE`` names in ``dockerfile`` (a literal one)."""
    try:
        match = _EXPOSE.search(dockerfile.read_text("utf-8", errors="replace"))
    except OSError:
        return None
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SmokeFacts:
    """What the source shows of the app's routes: ``/version``, a health route, ``GIT_SHA``."""

    serves_version: bool
    health_path: str | None
    knows_sha: bool


def smoke_facts(context: Path, dockerfile: Path | None) -> SmokeFacts:
    """Read the source under ``context`` (and the Dockerfile) for the routes it serves."""
    serves_version = False
    health: str | None = None
    knows_sha = bool(
        dockerfile is not None
        and dockerfile.is_file()
        and _GIT_SHA.search(dockerfile.read_text("utf-8", errors="replace"))
    )
    count = 0
    for path in walk(context):
        if path.suffix not in SOURCE_SUFFIXES:
            continue
        count += 1
        if count > _MAX_SOURCE_FILES:
            break
        try:
            text = path.read_text("utf-8", errors="replace")
        except OSError:
            continue
        serves_version = serves_version or bool(_VERSION_ROUTE.search(text))
        if health is None and (match := _HEALTH_ROUTE.search(text)):
            health = match.group(1)
        knows_sha = knows_sha or bool(_GIT_SHA.search(text))
    return SmokeFacts(serves_version=serves_version, health_path=health, knows_sha=knows_sha)


@dataclass(frozen=True)
class ImageFacts:
    """One image the repository builds.

    Attributes:
        name: The ``[images.<name>]`` key (unused for a single image).
        context: The build context, relative to conveyor.toml's directory.
        dockerfile: The Dockerfile, relative to the context.
        found: Where it was found, for a comment ("compose.yaml, service api").
        port: The port ``EXPOSE`` names, if any.
        smoke: What the source shows of its routes.
        paths: The directory whose changes concern it (monorepos), relative to conveyor.toml.
    """

    name: str
    context: str
    dockerfile: str
    found: str
    port: int | None
    smoke: SmokeFacts
    target: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    #: The compose service that builds it, when a compose file does.
    service: str | None = None
    #: The Dockerfile relative to conveyor.toml's directory (where EXPOSE was read).
    dockerfile_path: str = "Dockerfile"


def dockerfile_image(directory: Path, dockerfile: Path, name: str, paths: bool) -> ImageFacts:
    """The image a Dockerfile under ``directory`` builds, its own directory as the context."""
    context = dockerfile.parent
    relative = context.relative_to(directory).as_posix() or "."
    return ImageFacts(
        name=name,
        context=relative,
        dockerfile=dockerfile.name,
        found=dockerfile.relative_to(directory).as_posix(),
        port=exposed_port(dockerfile),
        smoke=smoke_facts(context, dockerfile),
        paths=(relative,) if paths and relative != "." else (),
        dockerfile_path=dockerfile.relative_to(directory).as_posix(),
    )
