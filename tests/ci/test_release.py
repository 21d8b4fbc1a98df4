"""One version everywhere, and a distribution that installs under its own name.

``conveyor.__version__`` is the one source: the package metadata reads it,
the CHANGELOG has its section, and every wrapper and document that names a
release of Conveyor names this one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from conveyor import __version__
from conveyor.scaffold.generator import UPSTREAM_REF

from .rules import REPO

DISTRIBUTION = "conveyor-gitops"
VENV_SITE = next(Path(sys.executable).parent.parent.glob("lib/python3*/site-packages"))
#: Files that name a release of Conveyor (``@vX.Y.Z``, ``ref: vX.Y.Z``, ``/vX.Y.Z/``).
NAMING_FILES = [
    REPO / ".github" / "workflows" / "conveyor.yml",
    REPO / "action.yml",
    REPO / "docs" / "ci.md",
    REPO / "README.md",
    *sorted((REPO / "templates").glob("*.yml")),
    *sorted((REPO / "src" / "conveyor" / "scaffold" / "templates").glob("*.tmpl")),
]
_CONVEYOR_RELEASE = re.compile(
    r"conveyor(?:-ci/conveyor|/conveyor)?[^\s\"']*?(?:@|/-/raw/|/)v(\d+\.\d+\.\d+)\b"
    r"|ref: v(\d+\.\d+\.\d+)\b|release v(\d+\.\d+\.\d+) of Conveyor"
    r"|CONVEYOR_RELEASE: v(\d+\.\d+\.\d+)\b|conveyor-project at v(\d+\.\d+\.\d+)\b"
)


def test_the_installed_distribution_is_conveyor_gitops_at_the_package_version() -> None:
    assert metadata.version(DISTRIBUTION) == __version__
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert pyproject["project"]["name"] == DISTRIBUTION
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "conveyor.__version__"}
    assert "version" not in pyproject["project"]
    # the command stays `conveyor`
    assert pyproject["project"]["scripts"] == {"conveyor": "conveyor.cli.entry:main"}


def test_the_dagger_module_depends_on_the_same_distribution_and_version() -> None:
    module = tomllib.loads((REPO / "pipelines" / "pyproject.toml").read_text("utf-8"))
    assert DISTRIBUTION in module["project"]["dependencies"]
    assert module["project"]["version"] == __version__
    assert DISTRIBUTION in module["tool"]["uv"]["sources"]


def test_the_changelog_has_a_section_for_this_version() -> None:
    headings = re.findall(r"^## (.+)$", (REPO / "CHANGELOG.md").read_text("utf-8"), re.M)
    assert __version__ in headings
    assert headings[0] == "Unreleased"


def test_every_file_that_names_a_release_names_this_one() -> None:
    named = {
        (path.relative_to(REPO).as_posix(), next(v for v in found.groups() if v))
        for path in NAMING_FILES
        for found in _CONVEYOR_RELEASE.finditer(path.read_text("utf-8"))
    }
    # the pattern finds the wrappers' references
    assert {"templates/conveyor.yml", "docs/ci.md", ".github/workflows/conveyor.yml"} <= {
        path for path, _ in named
    }
    assert {version for _, version in named} == {__version__}, sorted(named)
    assert f"v{__version__}" == UPSTREAM_REF


def test_the_release_commit_is_empty_in_a_checkout() -> None:
    # the release workflow writes the tagged commit here before it builds
    release = (REPO / "src" / "conveyor" / "_release.py").read_text("utf-8")
    assert 'COMMIT = ""' in release.splitlines()
    workflow = (REPO / ".github" / "workflows" / "release.yml").read_text("utf-8")
    assert "src/conveyor/_release.py" in workflow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The composite action's install script run for real on this checkout.

    pip builds a wheel from the checkout (PEP 517, setuptools from PyPI) and
    installs it into the script's own virtualenv without dependencies; those
    come from this test virtualenv through PYTHONPATH when the CLI runs (its
    editable link to the checkout is a .pth file, which PYTHONPATH ignores).
    """
    runner = tmp_path_factory.mktemp("runner")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(runner),
        "RUNNER_TEMP": str(runner),
        "GITHUB_PATH": str(runner / "github-path"),
        "GITHUB_OUTPUT": str(runner / "github-output"),
        "CONVEYOR_SOURCE": str(REPO),
        "CONVEYOR_EXTRAS": "",
        "PIP_NO_DEPS": "1",
        "PYTHONPATH": str(VENV_SITE),  # the dependencies, for the script's `conveyor --version`
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-conveyor.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return runner, done.stdout


def test_the_action_installs_the_checkout_under_the_new_name(installed: tuple[Path, str]) -> None:
    runner, out = installed
    venv = runner / "conveyor-venv"
    assert (runner / "github-path").read_text() == f"{venv / 'bin'}\n"
    assert (runner / "github-output").read_text() == f"version={__version__}\n"
    assert f"installed conveyor {__version__} from {REPO} into {venv}" in out
    # a real install from a built wheel, not a link to the checkout
    (dist_info,) = venv.glob("lib/python3*/site-packages/conveyor_gitops-*.dist-info")
    assert dist_info.name == f"conveyor_gitops-{__version__}.dist-info"
    assert not list(venv.glob("lib/python3*/site-packages/__editable__*"))
    version = subprocess.run(
        [str(venv / "bin" / "conveyor"), "--version"],
        env={**os.environ, "PYTHONPATH": str(VENV_SITE)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert version.stdout == f"conveyor {__version__}\n"


def test_the_action_refuses_extras_that_are_not_names(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-conveyor.sh")],
        env={
            "PATH": os.environ["PATH"],
            "RUNNER_TEMP": str(tmp_path),
            "GITHUB_PATH": str(tmp_path / "p"),
            "GITHUB_OUTPUT": str(tmp_path / "o"),
            "CONVEYOR_SOURCE": str(REPO),
            "CONVEYOR_EXTRAS": "dagger] ; curl evil",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 1
    assert "::error::extras 'dagger] ; curl evil' must be extra names" in done.stdout
    assert not (tmp_path / "conveyor-venv").exists()


def test_the_constraints_are_the_tested_set_of_this_environment() -> None:
    # what the tests run against (setup.sh installs with -c constraints.txt) is what
    # the composite action installs: regenerate with scripts/constraints.py after an upgrade
    generated = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "constraints.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert (REPO / "constraints.txt").read_text("utf-8") == generated.stdout
    pins = dict(
        line.split("==") for line in generated.stdout.splitlines() if not line.startswith("#")
    )
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    for requirement in pyproject["project"]["dependencies"]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace(".", "-")
        assert name in pins, name
    assert "dagger-io" in pins
    script = (REPO / "scripts" / "install-conveyor.sh").read_text("utf-8")
    assert 'constraints=(-c "$CONVEYOR_SOURCE/constraints.txt")' in script
