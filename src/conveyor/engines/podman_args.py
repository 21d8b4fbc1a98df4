"""The podman command-line arguments for env, secrets, caches and CA bundles (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.engines.port import CacheMount
from conveyor.errors import EngineError
from conveyor.secrets import Secret

CA_PATH = "/etc/ssl/certs/ca-certificates.crt"
CA_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS")
VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LABEL = "io.conveyor.engine"
"""What made a container or network: ``run``, ``service``, ``network``."""
SESSION_LABEL = "io.conveyor.session"
"""Names the engine instance that made a container or network: what its sweep removes."""


def flag_value(value: bool) -> str:
    return "true" if value else "false"


def label_args(kind: str, session: str) -> list[str]:
    """The labels of everything the engine makes: what it is, and which engine made it."""
    return ["--label", f"{LABEL}={kind}", "--label", f"{SESSION_LABEL}={session}"]


def pairs(flag: str, values: Mapping[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in (flag, f"{key}={value}")]


def env_args(env: Mapping[str, str], secrets: Sequence[Secret]) -> list[str]:
    # "-e NAME" without a value: podman copies it from its own environment.
    return [*pairs("-e", env), *[arg for s in secrets for arg in ("-e", s.name)]]


def cache_args(caches: Sequence[CacheMount]) -> list[str]:
    args: list[str] = []
    for cache in caches:
        name, path = cache.name, cache.path
        if not VOLUME_NAME.match(name):
            raise EngineError(
                f"cache name {name!r} is not a valid volume name",
                hint="use letters, digits, '.', '_' and '-' (stages.test.caches keys)",
            )
        args += ["-v", f"conveyor-cache-{name}:{path}"]
    return args


def ca_args(bundle: Path | None, *, build: bool = False) -> list[str]:
    if bundle is None:
        return []
    if not bundle.is_file():
        raise EngineError(
            f"CA bundle {bundle} does not exist", hint="check run.ca_bundle in conveyor.toml"
        )
    mount = ["-v", f"{bundle.resolve()}:{CA_PATH}:ro"]
    if build:
        # Build args are recorded in the image history; the path is no secret.
        return mount
    return [*mount, *pairs("-e", dict.fromkeys(CA_ENV, CA_PATH))]
