"""``conveyor doctor`` against a real registry and a real bare manifest repository."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(tmp_path: Path, registry: str, repo: str) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(
        f"""
[app]
name = "hello"

[registry]
host = "{registry}"
repository = "hello"
insecure = true

[gitops]
repo = "{repo}"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"
"""
    )
    return path


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    (source / "README").write_text("manifests\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "x"],
    ):
        subprocess.run(["git", *args], cwd=source, check=True)
    bare = tmp_path / "manifests.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    return bare


def rows(output: str) -> dict[str, str]:
    """check name -> status, from the table (wide enough that rows are not wrapped)."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) >= 3 and cells[0]:
            found[cells[0]] = cells[1]
    return found


def test_everything_reachable(tmp_path: Path, registry: str, bare_repo: Path) -> None:
    config = write_config(tmp_path, registry, str(bare_repo))
    result = runner.invoke(app, ["doctor", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    found = rows(result.output)
    assert found["git"] == "ok"
    assert found["podman"] == "ok"
    assert found["configuration"] == "ok"
    assert found["engine"] == "ok"
    assert found[f"registry {registry}"] == "ok"
    assert found["manifest repo"] == "ok"
    assert "podman: Dagger cannot run here" in result.output or "dagger:" in result.output
    assert f"http://{registry}/v2/ answered 200" in result.output
    assert "branch main at " in result.output


def test_unreachable_registry_and_missing_branch_fail(tmp_path: Path, bare_repo: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, dead, str(bare_repo))
    config.write_text(config.read_text().replace('repo = "', 'branch = "release"\nrepo = "'))
    result = runner.invoke(app, ["doctor", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    found = rows(result.output)
    assert found[f"registry {dead}"] == "missing"
    assert found["manifest repo"] == "missing"
    assert "branch 'release' does not exist" in result.output
    assert "ConnectError" in result.output


def test_a_bad_configuration_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text("[app]\nname = 1\n")
    result = runner.invoke(
        app, ["doctor", "--config", str(tmp_path / "conveyor.toml")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert rows(result.output)["configuration"] == "missing"
    assert "app.name: Input should be a valid string" in result.output
