"""What a Compose file tells ``conveyor init``: how the app is built, and what it runs beside.

A service with ``build:`` is one of the repository's own images: its context
and Dockerfile (relative to the compose file) become the build's.  A service
with only an ``image:`` is a dependency (a database, a cache): it becomes a
service of the ``integration`` stage, with its port from ``expose`` or
``ports`` and its environment from ``environment``.  A value that looks like
a secret is never copied: the generated file is committed.  Every such value
is replaced by the one placeholder ``SECRET_PLACEHOLDER``, so that a database
password and the URL the app reaches it by still agree.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.errors import ScaffoldError
from conveyor.scaffold.proposal import ProposedService, quote

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
SECRET_PLACEHOLDER = "conveyor-test-only"  # noqa: S105 (a throwaway value, not a secret)
_SECRET_KEY = re.compile(r"(PASSWORD|PASSWD|PASS$|SECRET|TOKEN|API_?KEY|PRIVATE|CREDENTIAL)", re.I)
_URL_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)(?=@)")
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVICE_NAME_INVALID = re.compile(r"[^a-z0-9-]+")
#: The port of well-known images when the compose file publishes none.
WELL_KNOWN_PORTS = {
    "postgres": 5432,
    "postgis/postgis": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "redis": 6379,
    "valkey/valkey": 6379,
    "mongo": 27017,
    "rabbitmq": 5672,
    "memcached": 11211,
    "elasticsearch": 9200,
    "minio/minio": 9000,
}


@dataclass(frozen=True)
class ComposeBuild:
    """A service the compose file builds: its context and Dockerfile, relative to ``base``.

    ``base`` is the directory conveyor.toml will be in; ``context`` is
    relative to it and ``dockerfile`` to the context (as Compose has it).
    """

    service: str
    context: str
    dockerfile: str
    target: str | None
    args: tuple[tuple[str, str], ...]
    #: The service's environment, secrets replaced (what the app is told of its services).
    env: tuple[tuple[str, str], ...]
    env_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComposeFacts:
    """The compose file, relative to the repository root, and what it says."""

    file: str
    builds: tuple[ComposeBuild, ...]
    services: tuple[ProposedService, ...]
    left_out: tuple[str, ...]


def find_compose(directory: Path, toplevel: Path) -> Path | None:
    """The compose file in ``directory`` or the closest directory above it in the repository."""
    for candidate in (directory, *directory.parents):
        for name in COMPOSE_NAMES:
            if (candidate / name).is_file():
                return candidate / name
        if candidate == toplevel:
            break
    return None


def read_compose(path: Path, base: Path, toplevel: Path) -> ComposeFacts:
    """Read the compose file at ``path``; paths are made relative to ``base``.

    Raises:
        ScaffoldError: the file is not YAML, or ``services`` is not a mapping.
    """
    try:
        data = YAML(typ="safe").load(path.read_text("utf-8"))
    except OSError as exc:
        raise ScaffoldError(
            path, f"cannot be read ({exc.strerror})", hint="fix its permissions, or move it away"
        ) from exc
    except (YAMLError, UnicodeDecodeError) as exc:
        raise ScaffoldError(
            path, f"is not valid YAML: {exc}".splitlines()[0], hint="fix the compose file"
        ) from exc
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise ScaffoldError(
            path, "has no 'services' mapping", hint="fix the compose file, or move it away"
        )
    builds: list[ComposeBuild] = []
    dependencies: list[ProposedService] = []
    left_out: list[str] = []
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        if "build" in service:
            builds.append(_build(str(name), service, path.parent, base))
        elif isinstance(service.get("image"), str):
            proposed, problem = _dependency(str(name), service)
            if proposed is not None:
                dependencies.append(proposed)
            if problem is not None:
                left_out.append(problem)
    return ComposeFacts(
        file=path.relative_to(toplevel).as_posix(),
        builds=tuple(builds),
        services=tuple(dependencies),
        left_out=tuple(left_out),
    )


def _build(name: str, service: dict[str, Any], compose_dir: Path, base: Path) -> ComposeBuild:
    build = service["build"]
    spec: dict[str, Any] = {"context": build} if isinstance(build, str) else dict(build or {})
    context = (compose_dir / str(spec.get("context", "."))).resolve()
    args = spec.get("args") or {}
    pairs: list[tuple[str, str]] = []
    for item in args if isinstance(args, list) else [f"{k}={v}" for k, v in args.items()]:
        arg, sep, value = str(item).partition("=")
        if sep and value != "None" and not _looks_secret(arg, value) and "${" not in value:
            pairs.append((arg, value))
    target = spec.get("target")
    env, notes = _environment(service.get("environment"))
    return ComposeBuild(
        service=name,
        context=_relative(context, base),
        dockerfile=str(spec.get("dockerfile", "Dockerfile")),
        target=str(target) if target else None,
        args=tuple(pairs),
        env=env,
        env_notes=tuple(notes),
    )


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (``..`` when it is above), POSIX style."""
    try:
        return path.relative_to(base).as_posix() or "."
    except ValueError:
        ups = 0
        parent = base
        while True:
            ups += 1
            parent = parent.parent
            try:
                rest = path.relative_to(parent)
            except ValueError:
                continue
            return str(PurePosixPath(*([".."] * ups), *rest.parts))


def service_name(name: str) -> str:
    """A valid service name (``^[a-z][a-z0-9-]{0,62}$``) made from a compose service's name."""
    cleaned = _SERVICE_NAME_INVALID.sub("-", name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"svc-{cleaned}".rstrip("-")
    return cleaned[:63].rstrip("-")


def _dependency(name: str, service: dict[str, Any]) -> tuple[ProposedService | None, str | None]:
    written = str(service["image"])
    # compose's own default (postgres:${PG_VERSION:-16} is postgres:16 unless it is set)
    image = _INTERPOLATION.sub(lambda m: m.group("default") or "${}", written)
    if "$" in image:
        return None, f"{name} ({written}) is left out: its image comes from the environment"
    wanted = service_name(name)
    notes = [f"{name}: image {written} with compose's default"] if image != written else []
    port = _port(service, image)
    if port is None:
        return None, (
            f"{name} ({image}) is left out: the compose file names no port (expose, ports) "
            f"and Conveyor waits for one; add {{ name = {quote(wanted)}, image = {quote(image)}, "
            "port = N }"
        )
    env, env_notes = _environment(service.get("environment"))
    notes += env_notes
    if service.get("env_file"):
        notes.append(f"{name}: env_file is not read; add what the service needs to env")
    if "@" not in image and (
        not image.rsplit("/", 1)[-1].partition(":")[2]
        or image.rsplit("/", 1)[-1].partition(":")[2] == "latest"
    ):
        return None, (
            f"{name} ({image}) is left out: its image has no pinned tag and Conveyor refuses "
            f"mutable ones; add {{ name = {quote(wanted)}, "
            f"image = {quote(image.split(':', 1)[0] + ':<version>')}, port = {port} }}"
        )
    raw_command = service.get("command")
    if isinstance(raw_command, str):
        command = tuple(shlex.split(raw_command))  # compose splits a string the same way
    elif isinstance(raw_command, list):
        command = tuple(str(part) for part in raw_command)
    else:
        command = ()
    return ProposedService(wanted, image, port, env, tuple(notes), command), None


def _port(service: dict[str, Any], image: str) -> int | None:
    """The container port: the first of ``expose``, else of ``ports``, else a well-known one."""
    entries = [service.get("expose"), service.get("ports")]
    for entry in [item for value in entries if isinstance(value, list) for item in value]:
        if isinstance(entry, dict):
            target = entry.get("target")
            if isinstance(target, int):
                return target
            continue
        # "5432", "5432/tcp", "15432:5432", "127.0.0.1:15432:5432", "8000-8001:8000-8001"
        container = str(entry).rsplit(":", 1)[-1].split("/")[0].split("-")[0]
        if container.isdigit():
            return int(container)
    name = image.split("@", 1)[0]
    repository = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    repository = repository.removeprefix("docker.io/").removeprefix("library/")
    return WELL_KNOWN_PORTS.get(repository)


def _environment(raw: object) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """The environment as pairs (secret values replaced), and comment lines about it."""
    pairs: list[tuple[str, str | None]] = []
    if isinstance(raw, dict):
        pairs = [(str(k), None if v is None else str(v)) for k, v in raw.items()]
    elif isinstance(raw, list):
        for item in raw:
            name, sep, value = str(item).partition("=")
            pairs.append((name, value if sep else None))
    env: list[tuple[str, str]] = []
    notes: list[str] = []
    for name, raw_value in pairs:
        if not _ENV_NAME.match(name):
            continue
        if raw_value is None:
            notes.append(f"{name}: compose passes it from the host's environment; not copied")
            continue
        value = _INTERPOLATION.sub(lambda m: m.group("default") or "", raw_value)
        if _looks_secret(name, value):
            hidden = _URL_PASSWORD.sub(rf"\g<head>{SECRET_PLACEHOLDER}", value)
            what = "the password in compose's URL is" if hidden != value else "compose's value is"
            value = hidden if hidden != value else SECRET_PLACEHOLDER
            notes.append(
                f"{name}: {what} not copied (it looks like a secret); "
                f"{SECRET_PLACEHOLDER!r} is a throwaway value for this test service"
            )
        env.append((name, value))
    return tuple(env), notes


def _looks_secret(name: str, value: str) -> bool:
    return bool(value) and (bool(_SECRET_KEY.search(name)) or bool(_URL_PASSWORD.match(value)))
