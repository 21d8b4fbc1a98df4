"""Lint stages from the linters a repository configures: ruff, mypy, eslint, golangci-lint.

Each linter found becomes a gate (``[stages.<linter>]``) in a pinned image:
the version the repository pins (``ruff==0.8.4`` in a requirements file or
pyproject.toml, a pre-commit ``rev``), else the version Conveyor was tested
with, said in a comment so that the user pins their own.
"""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.scaffold.proposal import ProposedStage
from conveyor.scaffold.pyversion import python_image
from conveyor.scaffold.toolchains import (
    node_image,
    node_tool,
    npm_scripts,
    python_install,
    read_pyproject,
    requires_python,
)

#: Versions proposed when the repository pins none (the ones Conveyor's own checks use).
RUFF_VERSION = "0.17.6"
MYPY_VERSION = "2.4.1"
GOLANGCI_V1 = "v1.64.8"
GOLANGCI_V2 = "v2.15.0"

RUFF_FILES = ("ruff.toml", ".ruff.toml")
MYPY_FILES = ("mypy.ini", ".mypy.ini")
ESLINT_FILES = (
    *(f"eslint.config.{ext}" for ext in ("js", "mjs", "cjs", "ts", "mts", "cts")),
    *(f".eslintrc{ext}" for ext in ("", ".js", ".cjs", ".json", ".yml", ".yaml")),
)
GOLANGCI_FILES = (".golangci.yml", ".golangci.yaml", ".golangci.toml", ".golangci.json")
_PRE_COMMIT_REPOS = {
    "ruff": "astral-sh/ruff-pre-commit",
    "mypy": "pre-commit/mirrors-mypy",
}


def lint_stages(directory: Path) -> list[ProposedStage]:
    """One stage per linter configured in ``directory``, in a fixed order."""
    found = [_ruff(directory), _mypy(directory), _eslint(directory), _golangci(directory)]
    return [stage for stage in found if stage is not None]


def pinned_version(directory: Path, package: str) -> tuple[str, str] | None:
    """``(version, where)`` when the repository pins ``package`` exactly."""
    pattern = re.compile(rf"(?<![\w.-]){re.escape(package)}\s*==\s*([0-9][0-9A-Za-z.+-]*)")
    candidates = [directory / "pyproject.toml", *sorted(directory.glob("requirements*.txt"))]
    candidates += sorted((directory / "requirements").glob("*.txt"))
    for path in candidates:
        if path.is_file():
            match = pattern.search(path.read_text("utf-8", errors="replace"))
            if match:
                return match.group(1), path.relative_to(directory).as_posix()
    rev = _pre_commit_rev(directory, _PRE_COMMIT_REPOS.get(package))
    if rev is not None:
        return rev.removeprefix("v"), ".pre-commit-config.yaml"
    return None


def _pre_commit_rev(directory: Path, repo: str | None) -> str | None:
    path = directory / ".pre-commit-config.yaml"
    if repo is None or not path.is_file():
        return None
    try:
        data = YAML(typ="safe").load(path.read_text("utf-8"))
    except (YAMLError, UnicodeDecodeError):
        return None
    for entry in data.get("repos", []) if isinstance(data, dict) else []:
        if isinstance(entry, dict) and str(entry.get("repo", "")).rstrip("/").endswith(repo):
            rev = entry.get("rev")
            return str(rev) if rev else None
    return None


def _configured(directory: Path, files: tuple[str, ...], tool: str) -> str | None:
    """Where ``tool`` is configured: one of ``files``, or ``[tool.<tool>]`` in pyproject.toml."""
    for name in files:
        if (directory / name).is_file():
            return name
    if tool in read_pyproject(directory).get("tool", {}):
        return f"[tool.{tool}] in pyproject.toml"
    if tool == "mypy" and "[mypy]" in _text(directory / "setup.cfg"):
        return "[mypy] in setup.cfg"
    return None


def _text(path: Path) -> str:
    return path.read_text("utf-8", errors="replace") if path.is_file() else ""


def _version_note(directory: Path, package: str, default: str) -> tuple[str, str]:
    pinned = pinned_version(directory, package)
    if pinned is not None:
        return pinned[0], f"{package} {pinned[0]}, the version {pinned[1]} pins"
    return default, (
        f"{package} {default}: the repository pins no {package} version, so this is the one "
        "Conveyor was tested with; pin yours here"
    )


def _ruff(directory: Path) -> ProposedStage | None:
    where = _configured(directory, RUFF_FILES, "ruff")
    if where is None:
        return None
    version, note = _version_note(directory, "ruff", RUFF_VERSION)
    return ProposedStage(
        name="ruff",
        detected=f"ruff ({where})",
        description="lint: ruff check",
        image=f"ghcr.io/astral-sh/ruff:{version}-alpine",
        command=("ruff", "check", "."),
        notes=(note,),
    )


def _mypy(directory: Path) -> ProposedStage | None:
    where = _configured(directory, MYPY_FILES, "mypy")
    if where is None:
        return None
    version, note = _version_note(directory, "mypy", MYPY_VERSION)
    python = python_image(requires_python(directory))
    # mypy reads the project's imports: install it with its dependencies first
    script = " && ".join([*python_install(directory, f"mypy=={version}"), "python -m mypy ."])
    return ProposedStage(
        name="mypy",
        detected=f"mypy ({where})",
        description="type check: mypy",
        image=python.image,
        script=script,
        notes=(note, f"image: {python.reason}"),
    )


def _eslint(directory: Path) -> ProposedStage | None:
    where = next((name for name in ESLINT_FILES if (directory / name).is_file()), None)
    if where is None:
        return None
    package_json = directory / "package.json"
    scripts = npm_scripts(package_json) if package_json.is_file() else {}
    tool = node_tool(directory)
    if "lint" in scripts:
        run, detected = tool.run("lint"), f"eslint ({where}, the package.json script lint)"
    else:
        run, detected = tool.exec("eslint", "."), f"eslint ({where})"
    return ProposedStage(
        name="eslint",
        detected=detected,
        description="lint: eslint",
        image=node_image(directory)[0],
        script=f"{tool.install} && {run}",
        notes=("eslint and its plugins come from the lock file's devDependencies",),
    )


def _golangci(directory: Path) -> ProposedStage | None:
    where = next((name for name in GOLANGCI_FILES if (directory / name).is_file()), None)
    if where is None:
        return None
    # a v2 configuration says version: "2"; a v1 one says nothing
    v2 = re.search(r"""^version\s*[:=]\s*["']?2""", _text(directory / where), re.MULTILINE)
    version = GOLANGCI_V2 if v2 else GOLANGCI_V1
    generation = "v2 configuration" if v2 else 'v1 configuration (no version: "2")'
    return ProposedStage(
        name="golangci-lint",
        detected=f"golangci-lint ({where}, a {generation})",
        description="lint: golangci-lint run",
        image=f"golangci/golangci-lint:{version}",
        command=("golangci-lint", "run", "./..."),
        notes=(
            f"golangci-lint {version}: the latest release for that configuration Conveyor "
            "knows; pin the one your team uses",
        ),
    )
