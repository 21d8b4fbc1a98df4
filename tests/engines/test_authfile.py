"""Registry credentials go to podman/skopeo in a private, short-lived file."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from conveyor.engines.authfile import PASSWORD_NAME, authfile, lookup_credentials, registry_host
from conveyor.engines.port import RegistryAuth
from conveyor.errors import ConfigError
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


# -- lookup of a login ----------------------------------------------------------


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def helper(bin_dir: Path, name: str, body: str) -> None:
    """A real docker-credential-NAME on PATH that records its stdin."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(f"#!/bin/sh\ncat > {bin_dir}/asked-$1\n{body}\n")
    script.chmod(0o755)


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment with an empty home, no runtime dir, only /usr/bin and /bin on PATH."""
    (tmp_path / "home").mkdir()
    return {"HOME": str(tmp_path / "home"), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}


@pytest.mark.anyio
async def test_no_files_no_login(home: dict[str, str]) -> None:
    assert await lookup_credentials("myacr.azurecr.io", home) is None


@pytest.mark.anyio
async def test_podman_login_file_before_docker_config(home: dict[str, str], tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    env = {**home, "XDG_RUNTIME_DIR": str(runtime)}
    write_json(
        Path(home["HOME"]) / ".docker" / "config.json",
        {"auths": {"https://myacr.azurecr.io": {"auth": basic("docker", "from-docker")}}},
    )
    found = await lookup_credentials("myacr.azurecr.io", env)
    assert found == RegistryAuth("docker", Secret(PASSWORD_NAME, "from-docker"))

    write_json(
        runtime / "containers" / "auth.json",
        {"auths": {"myacr.azurecr.io": {"auth": basic("podman", "from-podman")}}},
    )
    found = await lookup_credentials("myacr.azurecr.io", env)
    assert found is not None
    assert (found.username, found.password.reveal()) == ("podman", "from-podman")
    assert "from-podman" not in repr(found)
    assert await lookup_credentials("other.example.com", env) is None


@pytest.mark.anyio
async def test_registry_auth_file_is_the_only_file_when_set(
    home: dict[str, str], tmp_path: Path
) -> None:
    write_json(
        Path(home["HOME"]) / ".config" / "containers" / "auth.json",
        {"auths": {"ghcr.io": {"auth": basic("a", "b")}}},
    )
    only = write_json(tmp_path / "ci-auth.json", {"auths": {"quay.io": {"auth": basic("c", "d")}}})
    env = {**home, "REGISTRY_AUTH_FILE": str(only)}
    assert await lookup_credentials("ghcr.io", env) is None
    found = await lookup_credentials("quay.io", env)
    assert found is not None
    assert found.username == "c"


@pytest.mark.anyio
async def test_docker_hub_aliases_and_identity_tokens(home: dict[str, str]) -> None:
    write_json(
        Path(home["HOME"]) / ".docker" / "config.json",
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": basic("hubuser", "hubpw")},
                # what 'az acr login' leaves: an empty password and a refresh token
                "myacr.azurecr.io": {
                    "auth": basic("00000000-0000-0000-0000-000000000000", ""),
                    "identitytoken": "refresh-abc",
                },
            }
        },
    )
    hub = await lookup_credentials("docker.io", home)
    assert hub is not None
    assert hub.username == "hubuser"
    acr = await lookup_credentials("myacr.azurecr.io", home)
    assert acr is not None
    assert acr.identity_token
    assert (acr.username, acr.password.reveal()) == (
        "00000000-0000-0000-0000-000000000000",
        "refresh-abc",
    )


def test_an_identity_token_goes_to_podman_as_one() -> None:
    acr = RegistryAuth("00000000-0000-0000-0000-000000000000", Secret("PW", "refresh-abc"), True)
    with authfile("myacr.azurecr.io/app:1", acr) as args:
        entry = json.loads(Path(args[1]).read_text())["auths"]["myacr.azurecr.io"]
    assert entry["identitytoken"] == "refresh-abc"
    assert base64.b64decode(entry["auth"]).decode() == "00000000-0000-0000-0000-000000000000:"


@pytest.mark.anyio
async def test_cred_helpers_win_over_auths_and_creds_store(
    home: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    helper(bin_dir, "ecr-login", """echo '{"Username": "AWS", "Secret": "ecr-pw"}'""")
    helper(bin_dir, "desktop", "echo 'credentials not found in native keychain' >&2; exit 1")
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    write_json(
        Path(home["HOME"]) / ".docker" / "config.json",
        {
            "auths": {ecr: {}, "ghcr.io": {"auth": basic("gh", "gh-pw")}},
            "credHelpers": {ecr: "ecr-login"},
            "credsStore": "desktop",
        },
    )
    found = await lookup_credentials(ecr, home)
    assert found is not None
    assert (found.username, found.password.reveal()) == ("AWS", "ecr-pw")
    assert (bin_dir / "asked-get").read_text() == ecr
    # the store has nothing for ghcr.io: the auths entry is used
    found = await lookup_credentials("ghcr.io", home)
    assert found is not None
    assert found.password.reveal() == "gh-pw"


@pytest.mark.anyio
async def test_a_token_from_a_helper_is_an_identity_token(
    home: dict[str, str], tmp_path: Path
) -> None:
    helper(tmp_path / "bin", "acr", """echo '{"Username": "<token>", "Secret": "rt-1"}'""")
    write_json(
        Path(home["HOME"]) / ".docker" / "config.json", {"credHelpers": {"x.azurecr.io": "acr"}}
    )
    found = await lookup_credentials("x.azurecr.io", home)
    assert found is not None
    assert found.identity_token


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not JSON"),
        ("[]", "is not a JSON object"),
        ('{"auths": {"ghcr.io": {"auth": "%%%"}}}', "auths.ghcr.io.auth"),
        ('{"credsStore": "nowhere"}', "docker-credential-nowhere is not on PATH"),
    ],
)
async def test_a_broken_credential_file_names_itself(
    home: dict[str, str], content: str, problem: str
) -> None:
    path = Path(home["HOME"]) / ".docker" / "config.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        await lookup_credentials("ghcr.io", home)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)
