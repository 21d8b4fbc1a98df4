"""The readers behind init's proposals: requires-python, compose services, linter versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.scaffold.compose import SECRET_PLACEHOLDER, read_compose
from conveyor.scaffold.deployment import strip_reference
from conveyor.scaffold.linters import lint_stages, pinned_version
from conveyor.scaffold.pyversion import python_image
from conveyor.scaffold.toolchains import detect_test_command

from .conftest import GitRepo


@pytest.mark.parametrize(
    ("requires", "image"),
    [
        (">=3.14", "python:3.14-slim"),
        (">=3.10", "python:3.10-slim"),
        (">3.11", "python:3.11-slim"),  # 3.11.1 is above 3.11
        (">=3.10,<3.13", "python:3.10-slim"),
        ("<3.13,>=3.12", "python:3.12-slim"),
        ("~=3.11", "python:3.11-slim"),
        ("~=3.12.1", "python:3.12-slim"),
        ("==3.13.*", "python:3.13-slim"),
        ("!=3.9.*,>=3.9", "python:3.10-slim"),
        (">= 3.11.4", "python:3.11-slim"),
        (None, "python:3.12-slim"),
    ],
)
def test_the_lowest_official_python_the_project_allows(requires: str | None, image: str) -> None:
    chosen = python_image(requires)
    assert chosen.image == image
    assert chosen.todo is None


def test_a_requirement_no_official_image_meets_is_a_todo() -> None:
    chosen = python_image(">=4.0")
    assert chosen.image == "python:3.14-slim"
    assert chosen.todo == (
        "requires-python '>=4.0' allows no official Python image Conveyor knows "
        "(3.9, 3.10, 3.11, 3.12, 3.13, 3.14): set the python images in conveyor.toml"
    )
    assert python_image("3.12 or later").todo is not None


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_compose_ports_come_from_expose_ports_or_the_image(tmp_path: Path) -> None:
    compose = write(
        tmp_path / "compose.yaml",
        """\
services:
  search: {image: "elasticsearch:8.15.0", expose: ["9200"]}
  queue: {image: "rabbitmq:3.13", ports: [{target: 5672, published: 15672}]}
  mysql: {image: "docker.io/library/mysql:8.4"}
  udp: {image: "coredns/coredns:1.11.3", ports: ["127.0.0.1:1053:53/udp"]}
  odd_Name: {image: "example/thing:1.0"}
""",
    )
    facts = read_compose(compose, tmp_path, tmp_path)
    assert [(s.name, s.image, s.port) for s in facts.services] == [
        ("search", "elasticsearch:8.15.0", 9200),
        ("queue", "rabbitmq:3.13", 5672),
        ("mysql", "docker.io/library/mysql:8.4", 3306),
        ("udp", "coredns/coredns:1.11.3", 53),
    ]
    assert facts.left_out == (
        "odd_Name (example/thing:1.0) is left out: the compose file names no port (expose, ports)"
        ' and Conveyor waits for one; add { name = "odd-name", image = "example/thing:1.0", '
        "port = N }",
    )


def test_compose_secrets_are_replaced_and_interpolation_resolved(tmp_path: Path) -> None:
    compose = write(
        tmp_path / "docker-compose.yml",
        """\
services:
  db:
    image: postgres:16.4
    env_file: .env
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:-hunter2}
      POSTGRES_USER: ${DB_USER:-app}
      AWS_SECRET_ACCESS_KEY: abc
      REPLICA_URL: postgres://app:pw@replica:5432/app
      GITHUB_TOKEN:
      PLAIN: "1"
""",
    )
    (db,) = read_compose(compose, tmp_path, tmp_path).services
    assert dict(db.env) == {
        "POSTGRES_PASSWORD": SECRET_PLACEHOLDER,
        "POSTGRES_USER": "app",
        "AWS_SECRET_ACCESS_KEY": SECRET_PLACEHOLDER,
        "REPLICA_URL": f"postgres://app:{SECRET_PLACEHOLDER}@replica:5432/app",
        "PLAIN": "1",
    }
    assert db.notes[-1] == "db: env_file is not read; add what the service needs to env"
    assert "GITHUB_TOKEN: compose passes it from the host's environment; not copied" in db.notes


def test_a_compose_file_that_is_not_yaml_stops_init(git_repo: GitRepo) -> None:
    repo = git_repo({"Dockerfile": "FROM scratch\n", "compose.yaml": "services: [unclosed\n"})
    result = CliRunner().invoke(app, ["init", "-C", str(repo)])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {repo / 'compose.yaml'}: is not valid YAML: ")
    assert result.stderr.endswith("  hint: fix the compose file\n")
    assert "Traceback" not in result.stderr
    assert not (repo / "conveyor.toml").exists()


def test_a_compose_file_without_services_is_named(git_repo: GitRepo) -> None:
    repo = git_repo({"Dockerfile": "FROM scratch\n", "compose.yml": "version: '3'\n"})
    result = CliRunner().invoke(app, ["init", "-C", str(repo)])
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {repo / 'compose.yml'}: has no 'services' mapping\n"
        "  hint: fix the compose file, or move it away\n"
    )


def test_linter_versions_come_from_what_the_repository_pins(tmp_path: Path) -> None:
    write(tmp_path / "ruff.toml", "line-length = 100\n")
    write(tmp_path / "mypy.ini", "[mypy]\n")
    write(tmp_path / "requirements-dev.txt", "pytest==8.3.3\nmypy == 1.13.0\n")
    write(
        tmp_path / ".pre-commit-config.yaml",
        "repos:\n  - repo: https://github.com/astral-sh/ruff-pre-commit\n    rev: v0.7.1\n",
    )
    assert pinned_version(tmp_path, "ruff") == ("0.7.1", ".pre-commit-config.yaml")
    assert pinned_version(tmp_path, "mypy") == ("1.13.0", "requirements-dev.txt")
    assert pinned_version(tmp_path, "pytest-mypy") is None
    ruff, mypy = lint_stages(tmp_path)
    assert (ruff.detected, ruff.image) == (
        "ruff (ruff.toml)",
        "ghcr.io/astral-sh/ruff:0.7.1-alpine",
    )
    assert ruff.notes == ("ruff 0.7.1, the version .pre-commit-config.yaml pins",)
    assert mypy.detected == "mypy (mypy.ini)"
    assert mypy.script == ("python -m pip install --quiet mypy==1.13.0 && python -m mypy .")


def test_no_linter_configured_proposes_no_stage(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\ndependencies = ["ruff"]\n')
    write(tmp_path / "package.json", '{"devDependencies": {"eslint": "9"}}')
    assert lint_stages(tmp_path) == []


def test_eslint_without_a_lint_script_runs_the_installed_eslint(tmp_path: Path) -> None:
    write(tmp_path / ".eslintrc.json", "{}")
    write(tmp_path / "package.json", '{"scripts": {"test": "vitest"}}')
    write(tmp_path / "package-lock.json", "{}")
    (eslint,) = lint_stages(tmp_path)
    assert eslint.script == "npm ci && npx --no-install eslint ."


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("ghcr.io/acme/api:1.0", "ghcr.io/acme/api"),
        ("localhost:5000/api", "localhost:5000/api"),
        ("localhost:5000/api:2@sha256:abc", "localhost:5000/api"),
        ("nginx", "nginx"),
    ],
)
def test_a_base_image_name_drops_tag_and_digest(image: str, name: str) -> None:
    assert strip_reference(image) == name


def test_odd_compose_values_are_left_out_not_crashed_on(tmp_path: Path) -> None:
    compose = write(
        tmp_path / "compose.yaml",
        """\
services:
  db: {image: "postgres:${PG_VERSION:-16.4}", ports: 5432}
  queue: {image: "${QUEUE_IMAGE}", ports: ["5672"]}
  cache: {image: "redis", expose: ["6379"]}
  notes: "not a service"
""",
    )
    facts = read_compose(compose, tmp_path, tmp_path)
    (db,) = facts.services
    assert (db.image, db.port, db.notes) == (
        "postgres:16.4",
        5432,  # ports: 5432 is not a list; the image's own port
        ("db: image postgres:${PG_VERSION:-16.4} with compose's default",),
    )
    assert facts.left_out == (
        "queue (${QUEUE_IMAGE}) is left out: its image comes from the environment",
        "cache (redis) is left out: its image has no pinned tag and Conveyor refuses mutable "
        'ones; add { name = "cache", image = "redis:<version>", port = 6379 }',
    )


def test_a_compose_command_string_is_split_as_compose_splits_it(tmp_path: Path) -> None:
    compose = write(
        tmp_path / "compose.yaml",
        """\
services:
  cache: {image: "redis:7.4", command: "redis-server --save '' --appendonly no"}
""",
    )
    (cache,) = read_compose(compose, tmp_path, tmp_path).services
    assert cache.command == ("redis-server", "--save", "", "--appendonly", "no")


@pytest.mark.parametrize(
    ("files", "image"),
    [
        ({".nvmrc": "v20.11.1\n"}, "node:20-slim"),
        ({".node-version": "18\n"}, "node:18-slim"),
        ({".nvmrc": "lts/*\n"}, "node:22-slim"),  # a name, not a version: the default
        ({}, "node:22-slim"),
    ],
)
def test_the_node_image_follows_the_version_files(
    tmp_path: Path, files: dict[str, str], image: str
) -> None:
    write(tmp_path / "package.json", '{"scripts": {"test": "jest"}}')
    for name, text in files.items():
        write(tmp_path / name, text)
    assert detect_test_command(tmp_path).image == image


def test_node_version_from_nvmrc_or_engines(tmp_path: Path) -> None:
    write(tmp_path / "package.json", '{"scripts": {"test": "jest"}, "engines": {"node": ">=19"}}')
    assert detect_test_command(tmp_path).image == "node:20-slim"  # the oldest LTS it allows
    write(tmp_path / ".nvmrc", "v24.1.0\n")
    found = detect_test_command(tmp_path)
    assert (found.image, found.image_reason) == ("node:24-slim", "Node 24, as .nvmrc says")
