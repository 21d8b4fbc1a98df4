"""Registry credentials in the format of containers-auth.json(5): read and handed on.

Reading (:func:`lookup_credentials`): when no ``registry.password_env`` is
configured, the login a user or CI job made (``podman login``, ``docker
login``, ``az acr login``) is found where those tools keep it, in this order:
``$REGISTRY_AUTH_FILE`` (alone, when set), ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.config/containers/auth.json``, ``~/.docker/config.json``.  In a file,
``credHelpers[host]`` wins over ``auths``, and docker's ``credsStore`` over
its ``auths``; a helper is asked with ``docker-credential-NAME get``.  An
``identitytoken`` is kept as such (:attr:`RegistryAuth.identity_token`).

Handing on (:func:`authfile`): ``--creds USER:PASSWORD`` would put the
password in ``argv``, which every user of the machine can read in ``/proc``.
Instead the credentials are written, mode 0600, to a temporary ``auth.json``,
passed with ``--authfile`` and deleted afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conveyor.engines.port import RegistryAuth
from conveyor.errors import ConfigError, ToolMissingError
from conveyor.process import run_process
from conveyor.secrets import Secret

PASSWORD_NAME = "REGISTRY_LOGIN"  # noqa: S105 -- a name, not a value
"""The name a password found in a credential file carries (what a masked value shows)."""
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def registry_host(address: str) -> str:
    """The registry part of an image address (``host[:port]``).

    Args:
        address: ``registry/repository[:tag][@digest]``.

    Returns:
        The first path component when it looks like a host (has a dot or a
        colon, or is ``localhost``), else ``docker.io``.
    """
    first, _, rest = address.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


@contextmanager
def authfile(address: str, auth: RegistryAuth | None) -> Iterator[list[str]]:
    """The ``--authfile PATH`` arguments for ``address``, or none without ``auth``.

    Args:
        address: The image address; its registry host keys the credentials.
        auth: The credentials, or ``None`` for anonymous access.

    Yields:
        Arguments to add to a podman/skopeo command line; the file they name
        exists (mode 0600) until the context ends.
    """
    if auth is None:
        yield []
        return
    if auth.identity_token:
        token = base64.b64encode(f"{auth.username}:".encode()).decode()
        entry = {"auth": token, "identitytoken": auth.password.reveal()}
    else:
        token = base64.b64encode(f"{auth.username}:{auth.password.reveal()}".encode()).decode()
        entry = {"auth": token}
    content = json.dumps({"auths": {registry_host(address): entry}})
    with tempfile.TemporaryDirectory(prefix="conveyor-auth-") as directory:
        path = Path(directory) / "auth.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        yield ["--authfile", str(path)]


# -- lookup ----------------------------------------------------------------------


def credential_files(environ: Mapping[str, str]) -> list[Path]:
    """The files a login may be in, in the order podman reads them."""
    if environ.get("REGISTRY_AUTH_FILE"):
        return [Path(environ["REGISTRY_AUTH_FILE"])]
    files = []
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = Path(environ["HOME"]) if environ.get("HOME") else None
    if home is not None:
        files.append(home / ".config" / "containers" / "auth.json")
    docker = Path(environ["DOCKER_CONFIG"]) if environ.get("DOCKER_CONFIG") else None
    if docker is None and home is not None:
        docker = home / ".docker"
    if docker is not None:
        files.append(docker / "config.json")
    return files


def _key_host(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``index.docker.io``; ``host/ns`` stays."""
    key = key.removeprefix("https://").removeprefix("http://").rstrip("/")
    return key.removesuffix("/v1").removesuffix("/v2")


def _same_host(key: str, host: str) -> bool:
    key = _key_host(key)
    if host in _DOCKER_HUB:
        return key in _DOCKER_HUB
    return key == host


def _decode(path: Path, key: str, entry: Any) -> RegistryAuth | None:
    """The credentials of one ``auths`` entry (``auth``, ``username``/``password``, token)."""
    if not isinstance(entry, dict):
        raise ConfigError(path, f"auths.{key}", "is not an object", hint=_FIX)
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(
                path, f"auths.{key}.auth", "is not base64 of 'user:password'", hint=_FIX
            ) from None
        username, _, password = decoded.partition(":")
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return RegistryAuth(username or "<token>", Secret(PASSWORD_NAME, token), True)
    if not username and not password:
        return None
    return RegistryAuth(username, Secret(PASSWORD_NAME, password))


_FIX = "log in again ('podman login HOST' / 'docker login HOST') or fix the file"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot be read: {exc}", hint=_FIX) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(path, None, f"is not JSON: {exc}", hint=_FIX) from None
    if not isinstance(data, dict):
        raise ConfigError(path, None, "is not a JSON object", hint=_FIX)
    return data


def _helper_for(data: Mapping[str, Any], host: str) -> str | None:
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _same_host(str(key), host) and isinstance(name, str) and name:
                return name
    store = data.get("credsStore")
    return store if isinstance(store, str) and store else None


async def ask_helper(
    name: str, host: str, environ: Mapping[str, str], path: Path
) -> RegistryAuth | None:
    """``docker-credential-NAME get`` for ``host``; ``None`` when it has nothing for it.

    Raises:
        ConfigError: the helper ``path`` names is not installed, or printed no credentials.
    """
    server = "https://index.docker.io/v1/" if host in _DOCKER_HUB else host
    try:
        result = await run_process(
            [f"docker-credential-{name}", "get"],
            environ=environ,
            stdin=server.encode(),
            check=False,
        )
    except ToolMissingError:
        raise ConfigError(
            path,
            "credsStore/credHelpers",
            f"names the credential helper {name!r}, but docker-credential-{name} is not on PATH",
            hint=f"install it, or set registry.password_env for {host}",
        ) from None
    if not result.ok:
        # "credentials not found in native keychain": no login for this host
        return None
    try:
        data = json.loads(result.stdout)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            path,
            "credsStore/credHelpers",
            f"docker-credential-{name} printed no Username and Secret for {host}",
            hint=_FIX,
        ) from None
    if username == "<token>":
        return RegistryAuth(username, Secret(PASSWORD_NAME, secret), True)
    return RegistryAuth(username, Secret(PASSWORD_NAME, secret))


async def lookup_credentials(host: str, environ: Mapping[str, str]) -> RegistryAuth | None:
    """The login for ``host`` in the standard credential files; ``None`` when there is none.

    Args:
        host: ``host[:port]`` of the registry.
        environ: Where ``REGISTRY_AUTH_FILE``, ``XDG_RUNTIME_DIR``, ``HOME``,
            ``DOCKER_CONFIG`` and ``PATH`` (for helpers) are read.

    Raises:
        ConfigError: a credential file is unreadable or malformed, or names a
            helper that is not installed.
    """
    for path in credential_files(environ):
        data = _read(path)
        if data is None:
            continue
        helper = _helper_for(data, host)
        if helper is not None:
            found = await ask_helper(helper, host, environ, path)
            if found is not None:
                return found
        auths = data.get("auths")
        if not isinstance(auths, dict):
            continue
        for key, entry in auths.items():
            if _same_host(str(key), host):
                found = _decode(path, str(key), entry)
                if found is not None:
                    return found
    return None
