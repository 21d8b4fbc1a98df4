"""How an application's tests run and its tools install: Python, Node (npm, yarn, pnpm), Go.

The unit-test command for ``[stages.test]`` and the pieces the lint and
integration stages reuse: the pip installs, the Node package manager the
lock file names, the Python image ``requires-python`` allows.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import ScaffoldError
from conveyor.scaffold.pyversion import python_image

_GO_DIRECTIVE = re.compile(r"^go\s+(\d+\.\d+)", re.MULTILINE)


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
    #: The JUnit report the command writes ("" when it writes none).
    junit: str = "junit.xml"
    #: Why the image is what it is (a comment in the generated file), or "".
    image_reason: str = ""


def detect_test_command(directory: Path) -> TestCommand:
    """The unit-test command: pytest, npm test or go test, else a placeholder with a TODO."""
    pyproject = directory / "pyproject.toml"
    has_python_tests = (directory / "tests").is_dir() and any((directory / "tests").rglob("*.py"))
    mentions_pytest = pyproject.is_file() and "pytest" in pyproject.read_text("utf-8", "replace")
    if has_python_tests or mentions_pytest:
        python = python_image(requires_python(directory))
        script = " && ".join([*python_install(directory, "pytest"), PYTEST])
        return TestCommand(
            python.image,
            ("sh", "-c", script),
            "pytest",
            todo=python.todo,
            image_reason=python.reason,
        )
    package_json = directory / "package.json"
    if package_json.is_file() and "test" in npm_scripts(package_json):
        tool = node_tool(directory)
        image, reason = node_image(directory)
        return TestCommand(
            image,
            ("sh", "-c", f"{tool.install} && {tool.run('test')}"),
            f"{tool.name} test",
            junit="",
            image_reason=reason,
        )
    go_mod = directory / "go.mod"
    if go_mod.is_file():
        match = _GO_DIRECTIVE.search(go_mod.read_text("utf-8"))
        version = match.group(1) if match else "1.23"
        return TestCommand(
            f"golang:{version}",
            (
                "go",
                "run",
                f"gotest.tools/gotestsum@{GOTESTSUM_VERSION}",
                "--junitfile",
                "junit.xml",
                "--",
                "./...",
            ),
            "go test ./... (through gotestsum, which writes the JUnit report go test does not)",
        )
    todo = (
        "no test suite was recognised (pytest, npm test, go test): "
        "set stages.test.image and stages.test.command in conveyor.toml"
    )
    return TestCommand(
        "busybox:1.36",
        ("sh", "-c", "echo 'TODO: set stages.test.command in conveyor.toml' >&2; exit 1"),
        "nothing (placeholder that fails until it is replaced)",
        todo=todo,
        junit="",
    )


PYTEST = "python -m pytest -q --junitxml=junit.xml"
NODE_IMAGE = "node:22-slim"
#: Node majors with an official ``node:N-slim`` image that are or were LTS, oldest first.
NODE_LTS = (18, 20, 22, 24)
_NODE_MAJOR = re.compile(r"^\s*v?(\d+)(?:\.\d+)*\s*$")
_NODE_FLOOR = re.compile(r"^\s*(?:>=|\^|~)?\s*v?(\d+)")


def node_image(directory: Path) -> tuple[str, str]:
    """``node:N-slim`` from .nvmrc or .node-version, else ``engines.node``; and why."""
    for name in (".nvmrc", ".node-version"):
        path = directory / name
        if path.is_file():
            match = _NODE_MAJOR.match(path.read_text("utf-8", "replace"))
            if match:
                return f"node:{match.group(1)}-slim", f"Node {match.group(1)}, as {name} says"
    package_json = directory / "package.json"
    engines = _package(package_json).get("engines") if package_json.is_file() else None
    wanted = engines.get("node") if isinstance(engines, dict) else None
    match = _NODE_FLOOR.match(wanted) if isinstance(wanted, str) else None
    if match:
        floor = int(match.group(1))
        major = next((m for m in NODE_LTS if m >= floor), None)
        if major is not None:
            return f"node:{major}-slim", (
                f"engines.node {wanted!r} in package.json: the oldest LTS it allows"
            )
    return NODE_IMAGE, "the current Node LTS (no .nvmrc, .node-version or engines.node)"


#: gotestsum runs go test and writes its JUnit report (go test writes none).
GOTESTSUM_VERSION = "v1.13.0"


def python_install(directory: Path, *tools: str) -> list[str]:
    """The pip commands that install ``tools``, requirements.txt and the project itself."""
    install = [f"python -m pip install --quiet {' '.join(tools)}"] if tools else []
    if (directory / "requirements.txt").is_file():
        install.append("python -m pip install --quiet -r requirements.txt")
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file() and _is_installable(pyproject):
        install.append("python -m pip install --quiet .")
    return install


def requires_python(directory: Path) -> str | None:
    """``project.requires-python`` of the directory's pyproject.toml, if it says."""
    value = read_pyproject(directory).get("project", {}).get("requires-python")
    return value if isinstance(value, str) else None


def read_pyproject(directory: Path) -> dict[str, Any]:
    """The directory's pyproject.toml as a table ({} when absent or not TOML)."""
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        return tomllib.loads(pyproject.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}


@dataclass(frozen=True)
class NodeTool:
    """npm, yarn or pnpm, chosen by the lock file: how to install and how to run a script."""

    name: str
    install: str

    def run(self, script: str) -> str:
        """The command that runs the package.json script ``script``."""
        if self.name == "npm" and script != "test":
            return f"npm run {script}"
        return f"{self.name} {script}"

    def exec(self, *argv: str) -> str:
        """The command that runs a tool installed in node_modules."""
        runner = {"npm": "npx --no-install", "yarn": "yarn", "pnpm": "pnpm exec"}[self.name]
        return " ".join([runner, *argv])


def node_tool(directory: Path) -> NodeTool:
    """The package manager the lock file names (npm without one)."""
    if (directory / "pnpm-lock.yaml").is_file():
        return NodeTool("pnpm", "corepack enable && pnpm install --frozen-lockfile")
    if (directory / "yarn.lock").is_file():
        if (directory / ".yarnrc.yml").is_file():  # Yarn 2 and later, through corepack
            return NodeTool("yarn", "corepack enable && yarn install --immutable")
        return NodeTool("yarn", "yarn install --frozen-lockfile")
    if (directory / "package-lock.json").is_file():
        return NodeTool("npm", "npm ci")
    return NodeTool("npm", "npm install")


def _is_installable(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text("utf-8"))
    except tomllib.TOMLDecodeError:
        return False
    return "build-system" in data or "project" in data


def _package(package_json: Path) -> dict[str, Any]:
    """package.json as a table.

    Raises:
        ScaffoldError: the file is not JSON.
    """
    try:
        data = json.loads(package_json.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScaffoldError(
            package_json, f"is not valid JSON: {exc}", hint="fix package.json, then run again"
        ) from exc
    return data if isinstance(data, dict) else {}


def npm_scripts(package_json: Path) -> dict[str, str]:
    """The ``scripts`` of package.json.

    Raises:
        ScaffoldError: the file is not JSON.
    """
    scripts = _package(package_json).get("scripts")
    if not isinstance(scripts, dict):
        return {}
    return {k: v for k, v in scripts.items() if isinstance(v, str)}
