"""What conveyor init reads from a repository: Dockerfile, test command, branch, origin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.errors import ScaffoldError
from conveyor.scaffold.repository import (
    Remote,
    app_name,
    default_branch,
    detect_test_command,
    find_dockerfile,
    inspect_repository,
    origin,
)

from .conftest import GitRepo, git


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("hello", "hello"),
        ("My Service_2", "my-service_2"),
        ("Hello.World", "hello.world"),
        ("__private", "private"),
        ("...", "app"),
        ("ünïcode", "n-code"),
    ],
)
def test_app_name_is_a_valid_config_name(directory: str, expected: str) -> None:
    assert app_name(directory) == expected


def test_dockerfile_or_containerfile_is_found(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    assert find_dockerfile(tmp_path) == "Containerfile"
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert find_dockerfile(tmp_path) == "Dockerfile"


def test_no_dockerfile_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile").write_text("FROM scratch\n")  # not at the top
    with pytest.raises(ScaffoldError) as caught:
        find_dockerfile(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: no Dockerfile (or Containerfile) found; Conveyor builds the image from it\n"
        "  hint: add a Dockerfile to this directory, then run 'conveyor init' again"
    )


def test_python_tests_directory_means_pytest(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text("")
    found = detect_test_command(tmp_path)
    assert found.detected == "pytest"
    assert found.image == "python:3.12-slim"
    assert found.command == (
        "sh",
        "-c",
        "python -m pip install --quiet pytest && python -m pytest -q --junitxml=junit.xml",
    )
    assert found.todo is None


def test_pytest_installs_requirements_and_the_project(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[project.optional-dependencies]\ndev = ["pytest"]\n'
    )
    (tmp_path / "requirements.txt").write_text("httpx\n")
    found = detect_test_command(tmp_path)
    assert found.command[2] == (
        "python -m pip install --quiet pytest"
        " && python -m pip install --quiet -r requirements.txt"
        " && python -m pip install --quiet ."
        " && python -m pytest -q --junitxml=junit.xml"
    )


def test_a_tests_directory_without_python_is_not_pytest(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "app.test.js").write_text("")
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": "node --test"}}))
    (tmp_path / "package-lock.json").write_text("{}")
    found = detect_test_command(tmp_path)
    assert (found.detected, found.image) == ("npm test", "node:22-slim")
    assert found.command == ("sh", "-c", "npm ci && npm test")
    assert found.junit == ""  # npm test writes no JUnit report


def test_npm_without_a_lock_file_installs(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    assert detect_test_command(tmp_path).command == ("sh", "-c", "npm install && npm test")


def test_package_json_without_a_test_script_falls_through_to_go(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"build": "tsc"}}))
    (tmp_path / "go.mod").write_text("module example.com/hello\n\ngo 1.22\n")
    found = detect_test_command(tmp_path)
    assert (found.detected, found.image, found.command, found.junit) == (
        "go test ./... (through gotestsum, which writes the JUnit report go test does not)",
        "golang:1.22",
        (
            "go",
            "run",
            "gotest.tools/gotestsum@v1.13.0",
            "--junitfile",
            "junit.xml",
            "--",
            "./...",
        ),
        "junit.xml",
    )


def test_bad_package_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{not json")
    with pytest.raises(ScaffoldError) as caught:
        detect_test_command(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'package.json'}: is not valid JSON: ")
    assert caught.value.hint == "fix package.json, then run again"


def test_nothing_recognised_gives_a_failing_placeholder_and_a_todo(tmp_path: Path) -> None:
    found = detect_test_command(tmp_path)
    assert found.todo == (
        "no test suite was recognised (pytest, npm test, go test): "
        "set stages.test.image and stages.test.command in conveyor.toml"
    )
    assert found.command[-1].endswith("exit 1")


def test_default_branch_follows_origin_head(git_repo: GitRepo, tmp_path: Path) -> None:
    upstream = git_repo({"Dockerfile": "FROM scratch\n"}, name="upstream", branch="trunk")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    git(clone, "switch", "-q", "-c", "feature")
    assert default_branch(clone) == "trunk"


def test_default_branch_without_origin_is_the_current_branch(git_repo: GitRepo) -> None:
    repo = git_repo({"Dockerfile": "FROM scratch\n"}, branch="develop")
    assert default_branch(repo) == "develop"


def test_detached_head_without_origin_is_refused(git_repo: GitRepo) -> None:
    repo = git_repo({"Dockerfile": "FROM scratch\n"})
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(ScaffoldError) as caught:
        default_branch(repo)
    assert caught.value.problem == (
        "cannot tell the default branch: HEAD is detached and origin/HEAD is not set"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/hello.git", Remote("github.com", "acme/hello")),
        ("https://github.com/acme/hello", Remote("github.com", "acme/hello")),
        ("git@github.com:acme/hello.git", Remote("github.com", "acme/hello")),
        ("git@gitlab.com:acme/team/hello.git", Remote("gitlab.com", "acme/team/hello")),
        ("ssh://git@git.example.com:2222/acme/hello.git", Remote("git.example.com", "acme/hello")),
        (
            "https://x-access-token:s3cr3t@github.com/acme/hello.git",
            Remote("github.com", "acme/hello"),
        ),
        ("/srv/git/hello.git", None),
    ],
)
def test_origin_is_read_as_host_and_path(git_repo: GitRepo, url: str, expected: Remote) -> None:
    repo = git_repo({}, origin=url)
    assert origin(repo) == expected


def test_origin_owner_is_the_group_path() -> None:
    assert Remote("gitlab.com", "acme/team/hello").owner == "acme/team"


def test_no_origin_is_none(git_repo: GitRepo) -> None:
    assert origin(git_repo({})) is None


def test_a_directory_outside_git_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ScaffoldError) as caught:
        inspect_repository(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path.resolve()}: is not inside a git repository; "
        "Conveyor tags images with the commit SHA\n"
        "  hint: run 'git init' and commit, or pass --directory the repository"
    )


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError) as caught:
        inspect_repository(tmp_path / "nope")
    assert caught.value.problem == "is not a directory"


def test_facts_of_an_application_in_a_subdirectory(git_repo: GitRepo) -> None:
    repo = git_repo(
        {"services/api/Dockerfile": "FROM scratch\n", "services/api/go.mod": "module x\n"},
        origin="git@github.com:acme/mono.git",
    )
    facts = inspect_repository(repo / "services" / "api")
    assert facts.toplevel == repo
    assert facts.subdirectory == "services/api"
    assert facts.app_name == "api"
    assert facts.test.image == "golang:1.23"
    assert facts.default_branch == "main"
    assert facts.remote == Remote("github.com", "acme/mono")
