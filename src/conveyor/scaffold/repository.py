"""What ``conveyor init`` learns from the application's repository.

The Dockerfile, the test command, the default branch, the ``origin`` remote
and a name for the application, read from the files and from git.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import ScaffoldError, ToolMissingError
from conveyor.process import run

DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")
_APP_NAME_INVALID = re.compile(r"[^a-z0-9._-]+")
_GO_DIRECTIVE = re.compile(r"^go\s+(\d+\.\d+)", re.MULTILINE)
_REMOTE = re.compile(
    r"^(?:[a-z+]+://(?:[^@/]+@)?(?P<host1>[^/:]+)(?::\d+)?/|[^@]+@(?P<host2>[^:]+):)"
    r"(?P<path>.+?)(?:\.git)?/?$"
)


@dataclass(frozen=True)
class TestCommand:
    """How the application's unit tests run in a container.

    ``detected`` says what was found (shown in the generated file); ``todo``
    is set when nothing was found and the user must fill the command in.
    """

    __test__ = False  # not a pytest test class

    image: str
    command: tuple[str, ...]
    detected: str
    todo: str | None = None


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
    """What the generator needs to know about the application's repository."""

    directory: Path
    toplevel: Path
    app_name: str
    dockerfile: str
    test: TestCommand
    default_branch: str
    remote: Remote | None

    @property
    def subdirectory(self) -> str:
        """The application's directory relative to the repository root (``.`` at the root)."""
        return self.directory.relative_to(self.toplevel).as_posix()


def inspect_repository(directory: Path) -> RepositoryFacts:
    """Read the facts ``conveyor init`` needs from ``directory``.

    Raises:
        ScaffoldError: the directory does not exist, is not in a git repository,
            or has no Dockerfile.
        ToolMissingError: git is not installed.
    """
    directory = directory.resolve()
    if not directory.is_dir():
        raise ScaffoldError(
            directory, "is not a directory", hint="pass --directory the application's repository"
        )
    toplevel = _toplevel(directory)
    return RepositoryFacts(
        directory=directory,
        toplevel=toplevel,
        app_name=app_name(directory.name),
        dockerfile=find_dockerfile(directory),
        test=detect_test_command(directory),
        default_branch=default_branch(directory),
        remote=origin(directory),
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
    raise ScaffoldError(
        directory,
        "no Dockerfile (or Containerfile) found; Conveyor builds the image from it",
        hint="add a Dockerfile to this directory, then run 'conveyor init' again",
    )


def detect_test_command(directory: Path) -> TestCommand:
    """The unit-test command: pytest, npm test or go test, else a placeholder with a TODO."""
    pyproject = directory / "pyproject.toml"
    has_python_tests = (directory / "tests").is_dir() and any((directory / "tests").rglob("*.py"))
    if has_python_tests or (pyproject.is_file() and "pytest" in pyproject.read_text("utf-8")):
        install = ["python -m pip install --quiet pytest"]
        if (directory / "requirements.txt").is_file():
            install.append("python -m pip install --quiet -r requirements.txt")
        if pyproject.is_file() and _is_installable(pyproject):
            install.append("python -m pip install --quiet .")
        script = " && ".join([*install, "python -m pytest -q --junitxml=junit.xml"])
        return TestCommand("python:3.12-slim", ("sh", "-c", script), "pytest")
    package_json = directory / "package.json"
    if package_json.is_file() and _has_npm_test(package_json):
        npm_install = "npm ci" if (directory / "package-lock.json").is_file() else "npm install"
        return TestCommand("node:22-slim", ("sh", "-c", f"{npm_install} && npm test"), "npm test")
    go_mod = directory / "go.mod"
    if go_mod.is_file():
        match = _GO_DIRECTIVE.search(go_mod.read_text("utf-8"))
        version = match.group(1) if match else "1.23"
        return TestCommand(f"golang:{version}", ("go", "test", "./..."), "go test ./...")
    todo = (
        "no test suite was recognised (pytest, npm test, go test): "
        "set stages.test.image and stages.test.command in conveyor.toml"
    )
    return TestCommand(
        "busybox:1.36",
        ("sh", "-c", "echo 'TODO: set stages.test.command in conveyor.toml' >&2; exit 1"),
        "nothing (placeholder that fails until it is replaced)",
        todo=todo,
    )


def _is_installable(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text("utf-8"))
    except tomllib.TOMLDecodeError:
        return False
    return "build-system" in data or "project" in data


def _has_npm_test(package_json: Path) -> bool:
    try:
        data = json.loads(package_json.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ScaffoldError(
            package_json, f"is not valid JSON: {exc}", hint="fix package.json, then run again"
        ) from exc
    scripts = data.get("scripts") if isinstance(data, dict) else None
    return isinstance(scripts, dict) and isinstance(scripts.get("test"), str)


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
