"""Registry credentials go to podman/skopeo in a private, short-lived file."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from conveyor.engines.authfile import authfile, registry_host
from conveyor.engines.port import RegistryAuth
from conveyor.secrets import Secret


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("127.0.0.1:5000/hello:abc", "127.0.0.1:5000"),
        ("myacr.azurecr.io/team/hello:abc", "myacr.azurecr.io"),
        ("localhost/hello:1", "localhost"),
        ("library/python:3.12", "docker.io"),
        ("python:3.12", "docker.io"),
    ],
)
def test_registry_host(address: str, host: str) -> None:
    assert registry_host(address) == host


def test_authfile_is_private_holds_the_credentials_and_is_removed() -> None:
    auth = RegistryAuth("robot", Secret("REGISTRY_PASSWORD", "pa55-word"))
    with authfile("127.0.0.1:5000/hello:abc", auth) as args:
        flag, name = args
        path = Path(name)
        assert flag == "--authfile"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        entry = json.loads(path.read_text())["auths"]["127.0.0.1:5000"]
        assert base64.b64decode(entry["auth"]).decode() == "robot:pa55-word"
    assert not path.exists()


def test_no_credentials_no_arguments() -> None:
    with authfile("127.0.0.1:5000/hello:abc", None) as args:
        assert args == []
