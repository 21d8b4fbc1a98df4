"""Registry logins through ``conveyor run``: the credential files reach the check and the push.

A real docker-registry behind Basic auth; the login is what ``podman login``
or ``docker login`` would leave in a file.  The password never shows in the
output or in the run's files.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.cli.exit_codes import ExitCode
from engines.registry_api import PrivateRegistry, private_registry
from ports import free_port

pytestmark = [pytest.mark.podman, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRegistry]:
    with private_registry(tmp_path_factory.mktemp("login-registry"), free_port()) as registry:
        yield registry


def login_file(path: Path, host: str, user: str, password: str) -> Path:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


def app(root: Path, host: str, extra: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    (root / "payload").write_text(f"{uuid.uuid4()}\n")
    (root / "conveyor.toml").write_text(
        f'[app]\nname = "login"\n\n'
        f'[registry]\nhost = "{host}"\nrepository = "logins/app-{uuid.uuid4().hex[:8]}"\n{extra}\n'
        "[stages.scan]\nenabled = false\n\n[stages.smoke]\nenabled = false\n\n"
        "[policy]\nallowed_registries = ['^127\\.0\\.0\\.1:[0-9]+/.+$']\n"
    )
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "app"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root


def conveyor_run(root: Path, **env: str) -> tuple[int, str, str]:
    """``conveyor run`` in ``root`` with an empty home.

    Returns:
        The exit code, its output, and its output followed by every file the
        run wrote (summary, spans, logs): where a password must not be.
    """
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "conveyor"), "run", "--engine", "podman"],
        cwd=root, capture_output=True, text=True, timeout=150, check=False,
        env={**os.environ, "CI": "true", "HOME": str(home), **env},
    )  # fmt: skip
    output = shown = done.stdout + done.stderr
    for written in (root / ".conveyor").rglob("*"):
        if written.is_file():
            shown += written.read_text(errors="replace")
    return done.returncode, output, shown


def remove_images() -> None:
    listed = subprocess.run(
        ["podman", "images", "-q", "--filter", "reference=localhost/conveyor/login"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    if listed:
        subprocess.run(["podman", "rmi", "-f", *set(listed)], check=False, capture_output=True)


@pytest.fixture(autouse=True)
def _images() -> Iterator[None]:
    yield
    remove_images()


def test_a_login_file_is_used_for_the_check_and_the_push(
    basic_registry: PrivateRegistry, tmp_path: Path
) -> None:
    root = app(tmp_path / "app", basic_registry.host)
    auth = login_file(
        tmp_path / "auth.json", basic_registry.host, basic_registry.user, basic_registry.password
    )

    code, output, shown = conveyor_run(root, REGISTRY_AUTH_FILE=str(auth))

    assert code == ExitCode.OK, shown
    assert f"published {basic_registry.host}/logins/" in output
    assert basic_registry.password not in shown


def test_a_refused_login_is_a_credentials_error_and_never_shown(
    basic_registry: PrivateRegistry, tmp_path: Path
) -> None:
    root = app(tmp_path / "app", basic_registry.host)
    wrong = "wrong-Pass-8812"
    auth = login_file(tmp_path / "auth.json", basic_registry.host, basic_registry.user, wrong)

    code, output, shown = conveyor_run(root, REGISTRY_AUTH_FILE=str(auth))

    assert code == ExitCode.FAILED
    assert f"registry {basic_registry.host} refused access to logins/" in shown
    assert "podman login" in shown
    assert wrong not in shown
    assert "Traceback" not in output


def test_password_env_wins_over_a_login_file(
    basic_registry: PrivateRegistry, tmp_path: Path
) -> None:
    root = app(
        tmp_path / "app",
        basic_registry.host,
        'username_env = "REG_USER"\npassword_env = "REG_PASSWORD"\n',
    )
    auth = login_file(tmp_path / "auth.json", basic_registry.host, "someone", "stale-Login-1")

    code, output, shown = conveyor_run(
        root,
        REGISTRY_AUTH_FILE=str(auth),
        REG_USER=basic_registry.user,
        REG_PASSWORD=basic_registry.password,
    )

    assert code == ExitCode.OK, output
    assert basic_registry.password not in shown
