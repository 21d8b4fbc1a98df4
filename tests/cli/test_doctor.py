"""``conveyor doctor`` against a real registry and a real bare manifest repository."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.cli.doctor import git_remote_check
from git_http import serve_git_http

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
    assert found["kubectl"] == "ok"  # 'kubectl version --client' answered
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
    assert found[f"registry {dead}"] == "failed"
    assert found["manifest repo"] == "failed"
    assert "branch 'release' does not exist" in result.output
    assert "ConnectError" in result.output


def test_a_bad_configuration_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text("[app]\nname = 1\n")
    result = runner.invoke(
        app, ["doctor", "--config", str(tmp_path / "conveyor.toml")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert rows(result.output)["configuration"] == "failed"
    assert "app.name: Input should be a valid string" in result.output


def test_a_kubectl_whose_check_errors_is_failed_not_ok(tmp_path: Path, bare_repo: Path) -> None:
    # a broken kubectl first on PATH: present, but its version check exits 1
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "kubectl"
    broken.write_text("#!/bin/sh\necho 'error: exec format broken' >&2\nexit 1\n")
    broken.chmod(0o755)
    config = write_config(tmp_path, "127.0.0.1:1", str(bare_repo))
    result = runner.invoke(
        app,
        ["doctor", "--config", str(config)],
        env={"COLUMNS": "200", "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    assert rows(result.output)["kubectl"] == "failed"
    assert (
        "present, but 'kubectl version --client' failed: error: exec format broken" in result.output
    )


def test_doctor_uses_gitops_token_env(tmp_path: Path, bare_repo: Path) -> None:
    token = "doctor-t0ken-value"
    with serve_git_http(bare_repo, token) as remote:
        config = write_config(tmp_path, "127.0.0.1:1", remote.url)
        config.write_text(
            config.read_text().replace('repo = "', 'token_env = "MANIFEST_TOKEN"\nrepo = "')
        )
        env = {"COLUMNS": "200", "MANIFEST_TOKEN": token}
        result = runner.invoke(app, ["doctor", "--config", str(config)], env=env)
        unset = runner.invoke(
            app, ["doctor", "--config", str(config)], env={**env, "MANIFEST_TOKEN": None}
        )
    assert rows(result.output)["manifest repo"] == "ok", result.output
    assert "branch main at " in result.output
    assert remote.expected in remote.authorizations  # the token was sent
    assert rows(unset.output)["manifest repo"] == "failed"
    assert "MANIFEST_TOKEN: secret environment variable is not set" in unset.output
    assert token not in result.output + unset.output


def test_a_repository_that_looks_like_an_option_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    check = git_remote_check(f"--upload-pack=touch {marker}", "main")
    assert not check.ok
    assert not marker.exists()
