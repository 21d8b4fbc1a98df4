"""Dagger's exceptions translated into Conveyor's, at the adapter boundary.

::

    dagger-io                         Conveyor
    ExecError                      -> CommandFailedError   (command, exit code, stderr tail)
    QueryError, by the engine's message:
      a network failure            -> UnreachableError     (dial tcp ... connection refused,
                                                            no such host, i/o timeout, TLS)
      an image it cannot pull      -> EngineError naming the image reference
                                      (not found, access denied)
      anything else                -> EngineError          (the engine refused an operation)
    ProvisionError, DownloadError,
    SessionError                   -> EngineUnavailableError (no engine could be started)
    ClientConnectionError,
    TransportError                 -> EngineUnavailableError (the engine did not answer)
    InvalidQueryError, ClientError,
    DaggerError (anything else)    -> EngineError

The engine's messages are read, not guessed: a pull goes through
``Container.from`` (``failed to resolve image "REF" (platform: "P"): ...``) or
a Dockerfile's ``FROM`` (``failed to resolve source metadata for REF: ...``),
and containerd's registry client ends the text with ``REF: not found`` when
every registry host answered 404, ``pull access denied, repository does not
exist or may require authorization`` after a refused token, or the Go network
error (``failed to do request: Head "URL": dial tcp HOST:PORT: connect:
connection refused``).  The recorded messages are in tests/engines/resources.

Every text taken from the engine goes through the run's :class:`Redactor`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import dagger

from conveyor.errors import (
    CommandFailedError,
    ConveyorError,
    EngineError,
    EngineUnavailableError,
    UnreachableError,
)
from conveyor.policy.reference import parse
from conveyor.secrets import Redactor

INSTALL_HINT = (
    "install the Dagger CLI (https://docs.dagger.io/install, e.g. "
    "'curl -fsSL https://dl.dagger.io/dagger/install.sh | BIN_DIR=$HOME/.local/bin sh') "
    "and a container runtime (Docker or Podman), or run with --engine podman"
)

PLAIN_HTTP_HINT = (
    "the registry {host} speaks plain HTTP and the engine spoke HTTPS to it: allow it in "
    'the engine\'s configuration, ~/.config/dagger/engine.json: {{"registries": {{"{host}": '
    '{{"http": true}}}}}} (or, for a custom engine, [registry."{host}"] http = true in '
    "/etc/dagger/engine.toml), then restart the engine; 127.0.0.1 and localhost already "
    "speak plain HTTP; or run with --engine podman"
)
"""For "server gave HTTP response to HTTPS client" only (see docs/dagger.md).

The engine merges engine.json's ``registries`` over engine.toml's
``[registry."HOST"]`` (BuildKit's keys ``mirrors``, ``http``, ``insecure``,
``ca``); ``insecure`` is HTTPS without certificate checks, not plain HTTP; a
host with no ``http`` setting that is localhost or a loopback address gets
plain HTTP (containerd's ``docker.MatchLocalhost``).
"""

CERTIFICATE_HINT = (
    "the engine does not trust the certificate of {host}: give the engine the CA, "
    "~/.config/dagger/ca-certificates/ for an engine the CLI starts, or "
    '{{"registries": {{"{host}": {{"ca": ["/path/in/engine.crt"]}}}}}} in engine.json'
)

UNREACHABLE_HINT = (
    "check that the registry runs and that the engine can reach {host}: the Dagger engine "
    "resolves and dials addresses from its own container, where 'localhost' is the engine"
)

MODULE_HINT = "the message above is the engine's; 'dagger call --debug ...' shows its full log"
CLIENT_HINT = (
    "the message above is the engine's; 'dagger --debug run conveyor run --engine dagger' "
    "shows its full log"
)

_NETWORK = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "connection reset by peer",
    "tls handshake timeout",
    "server gave http response to https client",
    "x509:",
    "tls: failed to verify certificate",
)
_DENIED = (
    "pull access denied",
    "401 unauthorized",
    "403 forbidden",
    "failed to authorize",
    "insufficient_scope",
)
_RESOLVE_IMAGE = re.compile(r'failed to resolve image "([^"]+)"')
_SOURCE_METADATA = re.compile(r"failed to resolve source metadata for (\S+?):? ")
_DIAL = re.compile(r"dial tcp (\[[^\]]+\]:\d+|[^\s:]+:\d+)")
_URL_HOST = re.compile(r'"https?://([^/"]+)/')
_LOOKUP = re.compile(r"lookup (\S+?)(?: on |: )")

Kind = Literal["unreachable", "not-found", "denied", "other"]


@dataclass(frozen=True)
class EngineMessage:
    """What an engine error message says, read from its text.

    Attributes:
        kind: ``unreachable`` (a network or TLS failure), ``not-found`` (every
            registry host answered 404 for the reference), ``denied``
            (credentials refused or missing), or ``other``.
        image: The image reference the engine was resolving, when it names one.
        host: The host it failed to reach or that refused, when it names one.
    """

    kind: Kind
    image: str | None = None
    host: str | None = None


def read_message(message: str) -> EngineMessage:
    """Classify an engine error message (see the module docstring)."""
    text = message.lower()
    image = _image(message)
    host = _host(message) or (registry_of(image) if image else None)
    if any(marker in text for marker in _NETWORK):
        return EngineMessage("unreachable", image, host)
    if any(marker in text for marker in _DENIED):
        return EngineMessage("denied", image, host)
    if text.rstrip().endswith(": not found") and image is not None:
        return EngineMessage("not-found", image, host)
    return EngineMessage("other", image, host)


def _image(message: str) -> str | None:
    for pattern in (_RESOLVE_IMAGE, _SOURCE_METADATA):
        found = pattern.search(message)
        if found:
            return found.group(1)
    return None


def registry_of(image: str) -> str | None:
    """The registry host of ``image``, ``None`` when it is not a reference."""
    try:
        return parse(image).registry
    except ConveyorError:
        return None


def _host(message: str) -> str | None:
    for pattern in (_URL_HOST, _DIAL, _LOOKUP):
        found = pattern.search(message)
        if found:
            return found.group(1)
    return None


def map_dagger_error(
    exc: dagger.DaggerError, redact: Redactor | None = None, *, module: bool = False
) -> ConveyorError:
    """The Conveyor error that says what ``exc`` means to a user.

    Args:
        exc: An exception raised by dagger-io.
        redact: Masks known secret values in text that came from the engine.
        module: Raised inside a Dagger module function (``dagger call``), where
            the CLI's ``--debug`` applies; else under ``conveyor run``.

    Returns:
        The error to raise ``from exc``.
    """
    clean = redact or Redactor()
    if isinstance(exc, dagger.ExecError):
        return CommandFailedError(
            [clean(arg) for arg in exc.command],
            exc.exit_code,
            clean(exc.stderr or exc.stdout),
        )
    if isinstance(exc, dagger.QueryError):
        return query_error(clean(str(exc)), module=module)
    if isinstance(exc, dagger.ProvisionError):
        return EngineUnavailableError(
            "dagger",
            f"the Dagger engine could not be started: {clean(str(exc))}",
            hint=INSTALL_HINT,
        )
    if isinstance(exc, dagger.ClientConnectionError | dagger.TransportError):
        return EngineUnavailableError(
            "dagger",
            f"the Dagger engine did not answer: {clean(str(exc))}",
            hint="check that the engine is running ('dagger core version'), "
            "or run with --engine podman",
        )
    return EngineError(f"Dagger client error: {clean(str(exc))}")


def query_error(message: str, *, module: bool = False) -> ConveyorError:
    """The error for an engine's (already redacted) query error ``message``."""
    read = read_message(message)
    if read.kind == "unreachable":
        host = read.host or "registry"
        return UnreachableError(
            "registry", host, _last_clause(message), hint=unreachable_hint(message, host)
        )
    if read.kind == "not-found":
        return EngineError(
            f"image {read.image} was not found in its registry: {message}",
            hint="check the reference (stages.*.image, a Dockerfile FROM, app.build_args); "
            "the Dagger engine pulls every image from a registry, it has no local images",
        )
    if read.kind == "denied":
        target = f"image {read.image}" if read.image else f"registry {read.host or '?'}"
        return EngineError(
            f"{target}: the registry refused access: {message}",
            hint="give the engine credentials (registry.username_env and password_env, or "
            "'docker login' on the machine that runs the dagger CLI)",
        )
    return EngineError(
        f"the Dagger engine refused the operation: {message}",
        hint=MODULE_HINT if module else CLIENT_HINT,
    )


def unreachable_hint(message: str, host: str) -> str:
    """What to do about a network failure the engine reported for ``host``."""
    text = message.lower()
    if "server gave http response to https client" in text:
        return PLAIN_HTTP_HINT.format(host=host)
    if "x509:" in text or "tls: failed to verify certificate" in text:
        return CERTIFICATE_HINT.format(host=host)
    return UNREACHABLE_HINT.format(host=host)


def _last_clause(message: str) -> str:
    """The innermost cause of a Go error chain (``a: b: c`` -> ``c``), with its dial target."""
    dial = message.find("dial tcp")
    if dial != -1:
        return message[dial:]
    return message.rsplit(": ", 1)[-1] if ": " in message else message
