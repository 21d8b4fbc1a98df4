"""What ``conveyor init`` learns from the application's repository.

The images (Dockerfiles, or the compose file's builds), the test command,
the linters, the compose file's services, the kustomize bases, the default
branch, the ``origin`` remote and a name for the application, read from the
files and from git.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import ScaffoldError, ToolMissingError
from conveyor.process import run
from conveyor.scaffold.compose import ComposeBuild, ComposeFacts, find_compose, read_compose
from conveyor.scaffold.deployment import BaseImages, find_bases
from conveyor.scaffold.dockerfiles import (
    DOCKERFILE_NAMES,
    ImageFacts,
    dockerfile_image,
    exposed_port,
    find_dockerfiles,
    image_name,
    smoke_facts,
)
from conveyor.scaffold.linters import lint_stages
from conveyor.scaffold.proposal import ProposedStage
from conveyor.scaffold.toolchains import TestCommand, detect_test_command

__all__ = [
    "DOCKERFILE_NAMES",
    "Remote",
    "RepositoryFacts",
    "TestCommand",
    "app_name",
    "default_branch",
    "detect_test_command",
    "find_dockerfile",
    "find_images",
    "inspect_repository",
    "origin",
]

_APP_NAME_INVALID = re.compile(r"[^a-z0-9._-]+")
_REMOTE = re.compile(
    r"^(?:[a-z+]+://(?:[^@/]+@)?(?P<host1>[^/:]+)(?::\d+)?/|[^@]+@(?P<host2>[^:]+):)"
    r"(?P<path>.+?)(?:\.git)?/?$"
)


@dataclass(frozen=True)
class Remote:
    """The ``origin`` remote: host and project path (``owner/repo`` or ``group/sub/project``)."""

    host: str
    path: str

    @property
    def owner(self) -> str:
        """Everything before the last path segment (the owner, or the group path)."""
        return self.path.rpartition("/")[0]


@dataclass(frozen=True)
class RepositoryFacts:
    """What the generator needs to know about the application's repository.

    ``images`` holds one image (the ``[app]`` shorthand) or several
    (``[images.<name>]`` tables); ``lint`` the linters found; ``compose`` what
    the compose file says; ``bases`` the kustomize bases in the repository.
    """

    directory: Path
    toplevel: Path
    app_name: str
    test: TestCommand
    default_branch: str
    remote: Remote | None
    images: tuple[ImageFacts, ...]
    lint: tuple[ProposedStage, ...] = ()
    compose: ComposeFacts | None = None
    bases: tuple[BaseImages, ...] = ()

    @property
    def subdirectory(self) -> str:
        """The application's directory relative to the repository root (``.`` at the root)."""
        return self.directory.relative_to(self.toplevel).as_posix()

    @property
    def dockerfile(self) -> str:
        """The first image's Dockerfile, relative to its context."""
        return self.images[0].dockerfile


def inspect_repository(directory: Path) -> RepositoryFacts:
    """Read the facts ``conveyor init`` needs from ``directory``.

    Raises:
        ScaffoldError: the directory does not exist, is not in a git repository,
            has no Dockerfile, or a compose file or package.json cannot be read.
        ToolMissingError: git is not installed.
    """
    directory = directory.resolve()
    if not directory.is_dir():
        raise ScaffoldError(
            directory, "is not a directory", hint="pass --directory the application's repository"
        )
    toplevel = _toplevel(directory)
    compose_file = find_compose(directory, toplevel)
    compose = read_compose(compose_file, directory, toplevel) if compose_file else None
    images = find_images(directory, compose)
    # one image a compose service builds is named after that service
    service = images[0].service if len(images) == 1 else None
    return RepositoryFacts(
        directory=directory,
        toplevel=toplevel,
        app_name=app_name(service or directory.name),
        test=detect_test_command(directory),
        default_branch=default_branch(directory),
        remote=origin(directory),
        images=images,
        lint=tuple(lint_stages(directory)),
        compose=compose,
        bases=tuple(find_bases(directory, toplevel)),
    )


def app_name(directory_name: str) -> str:
    """A valid ``app.name`` (``^[a-z0-9][a-z0-9._-]*$``) made from a directory name."""
    name = _APP_NAME_INVALID.sub("-", directory_name.lower()).lstrip("._-")
    return name or "app"


def find_dockerfile(directory: Path) -> str:
    """The name of the Dockerfile (or Containerfile) at the top of ``directory``.

    Raises:
        ScaffoldError: there is none.
    """
    for name in DOCKERFILE_NAMES:
        if (directory / name).is_file():
            return name
    raise _no_dockerfile(directory)


def find_images(directory: Path, compose: ComposeFacts | None) -> tuple[ImageFacts, ...]:
    """The images to build: the compose file's builds of this directory, else its Dockerfiles.

    A compose build belongs to ``directory`` when its Dockerfile is inside it;
    its context is the one the compose file names (the repository root, say),
    not the Dockerfile's directory.  Without one, every Dockerfile under
    ``directory`` (one per directory) is an image, each built from its own
    directory.

    Raises:
        ScaffoldError: no Dockerfile at all.
    """
    builds = [b for b in compose.builds if _inside(directory, b)] if compose else []
    if builds:
        assert compose is not None  # builds come from it
        return tuple(_compose_image(directory, compose, b, len(builds) > 1) for b in builds)
    dockerfiles = find_dockerfiles(directory)
    if not dockerfiles:
        raise _no_dockerfile(directory)
    several = len(dockerfiles) > 1
    names: list[str] = []
    images = []
    for dockerfile in dockerfiles:
        name = image_name(dockerfile.parent, directory)
        while name in names:
            name = f"{name}-{len(names)}"
        names.append(name)
        images.append(dockerfile_image(directory, dockerfile, name, paths=several))
    return tuple(images)


def _inside(directory: Path, build: ComposeBuild) -> bool:
    dockerfile = (directory / build.context / build.dockerfile).resolve()
    return dockerfile.is_file() and dockerfile.is_relative_to(directory)


def _compose_image(
    directory: Path, compose: ComposeFacts, build: ComposeBuild, several: bool
) -> ImageFacts:
    context = (directory / build.context).resolve()
    dockerfile = context / build.dockerfile
    own = dockerfile.parent.relative_to(directory).as_posix()
    return ImageFacts(
        name=image_name(Path(build.service), Path()),
        context=build.context,
        dockerfile=build.dockerfile,
        found=f"{compose.file}, service {build.service}",
        port=exposed_port(dockerfile),
        smoke=smoke_facts(dockerfile.parent, dockerfile),
        target=build.target,
        build_args=build.args,
        paths=(own,) if several and own != "." else (),
        service=build.service,
        dockerfile_path=_relative_path(dockerfile, directory),
    )


def _relative_path(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def _no_dockerfile(directory: Path) -> ScaffoldError:
    return ScaffoldError(
        directory,
        "no Dockerfile (or Containerfile) found; Conveyor builds the image from it",
        hint="add a Dockerfile to this directory, then run 'conveyor init' again",
    )


def default_branch(directory: Path) -> str:
    """``origin``'s default branch (``origin/HEAD``), else the current branch."""
    remote_head = _git(directory, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    if remote_head is not None:
        return remote_head.removeprefix("refs/remotes/origin/")
    current = _git(directory, "symbolic-ref", "--quiet", "--short", "HEAD")
    if current is not None:
        return current
    raise ScaffoldError(
        directory,
        "cannot tell the default branch: HEAD is detached and origin/HEAD is not set",
        hint="check out the default branch (git switch main), then run 'conveyor init' again",
    )


def origin(directory: Path) -> Remote | None:
    """The ``origin`` remote, when there is one whose URL can be read as host and path."""
    url = _git(directory, "remote", "get-url", "origin")
    if url is None:
        return None
    match = _REMOTE.match(url)
    if match is None:
        return None
    host = match.group("host1") or match.group("host2")
    return Remote(host=host, path=match.group("path"))


def _toplevel(directory: Path) -> Path:
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top is None:
        raise ScaffoldError(
            directory,
            "is not inside a git repository; Conveyor tags images with the commit SHA",
            hint="run 'git init' and commit, or pass --directory the repository",
        )
    return Path(top).resolve()


def _git(directory: Path, *args: str) -> str | None:
    """The stripped stdout of ``git args`` in ``directory``, or None when git exits non-zero."""
    git = shutil.which("git")
    if git is None:
        raise ToolMissingError("git")
    completed = run([git, *args], cwd=directory, environ=_git_env(), timeout=60, check=False)
    if not completed.ok:
        return None
    return completed.stdout.strip()


def _git_env() -> dict[str, str]:
    # git must look at the directory asked about (not at a GIT_DIR inherited
    # from a hook or a CI job) and never prompt.
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env
