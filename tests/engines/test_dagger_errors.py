"""Every dagger-io exception becomes a Conveyor error that says what to do."""

from __future__ import annotations

import dagger
import pytest
from dagger_query import dagger_error_classes, query_error

from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.engines.dagger_errors import map_dagger_error
from conveyor.errors import (
    CommandFailedError,
    ConveyorError,
    EngineError,
    EngineUnavailableError,
    UnreachableError,
)
from conveyor.secrets import Redactor, Secret

# Every DaggerError subclass dagger-io 0.21.11 defines, by name, and what it becomes.
EXPECTED: dict[str, type[ConveyorError]] = {
    "DaggerError": EngineError,
    "ClientError": EngineError,
    "InvalidQueryError": EngineError,
    "QueryError": EngineError,
    "ExecError": CommandFailedError,
    "ClientConnectionError": EngineUnavailableError,
    "TransportError": EngineUnavailableError,
    "ProvisionError": EngineUnavailableError,
    "DownloadError": EngineUnavailableError,
    "SessionError": EngineUnavailableError,
    "ModuleError": EngineError,
    "ModuleLoadError": EngineError,
    "InvalidInputError": EngineError,
    "InvalidResultError": EngineError,
    "ObjectNotFoundError": EngineError,
    "RegistrationError": EngineError,
    "BadUsageError": EngineError,
    "FunctionError": EngineError,
}


def instance(cls: type[dagger.DaggerError]) -> dagger.DaggerError:
    if cls is dagger.ExecError:
        return query_error(
            "engine says no",
            {"_type": "EXEC_ERROR", "cmd": ["sh"], "exitCode": 2, "stdout": "", "stderr": "boom"},
        )
    if cls is dagger.QueryError:
        return query_error("engine says no")
    return cls("engine says no")


def test_the_table_covers_every_dagger_error_class() -> None:
    assert set(dagger_error_classes()) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_dagger_error_maps_to_its_conveyor_error(name: str) -> None:
    error = map_dagger_error(instance(dagger_error_classes()[name]))

    assert type(error) is EXPECTED[name]
    assert str(error)


def test_an_exec_error_keeps_command_exit_code_and_redacted_stderr() -> None:
    token = Secret("TOKEN", "hunter2-secret")
    exc = query_error(
        "process failed",
        {
            "_type": "EXEC_ERROR",
            "cmd": ["curl", "-H", "Authorization: hunter2-secret", "https://x"],
            "exitCode": 22,
            "stdout": "",
            "stderr": "curl: (22) 401 for hunter2-secret",
        },
    )
    assert isinstance(exc, dagger.ExecError)

    error = map_dagger_error(exc, Redactor([token]))

    assert isinstance(error, CommandFailedError)
    assert error.exit_code == 22
    assert error.command == ("curl", "-H", "Authorization: ***", "https://x")
    assert "hunter2" not in str(error)
    assert "curl: (22) 401 for ***" in str(error)


def test_an_engine_that_cannot_start_says_how_to_install_dagger_or_use_podman() -> None:
    error = map_dagger_error(dagger.SessionError("exec: docker: not found"))

    assert isinstance(error, EngineUnavailableError)
    assert error.engine == "dagger"
    assert "exec: docker: not found" in str(error)
    assert error.hint is not None
    assert "https://docs.dagger.io/install" in error.hint
    assert "--engine podman" in error.hint


# Engine messages: the first two as the real v0.21.8 engine printed them (Dagger
# issue, client mode); the others in the words of the code that makes them
# (Dagger's Container.from and containerd's registry client, see dagger_errors).
LOCALHOST_REFUSED = (
    'failed to resolve image "localhost/conveyor/python:3.11" (platform: "linux/amd64"): '
    'failed to do request: Head "http://localhost/v2/conveyor/python/manifests/3.11": '
    "dial tcp 127.0.0.1:80: connect: connection refused"
)
RECORDED = [
    (LOCALHOST_REFUSED, UnreachableError, "localhost"),
    (
        'failed to resolve image "127.0.0.1:5055/hello:abc" (platform: "linux/amd64"): '
        'failed to do request: Head "http://127.0.0.1:5055/v2/hello/manifests/abc": '
        "dial tcp 127.0.0.1:5055: connect: connection refused",
        UnreachableError,
        "127.0.0.1:5055",
    ),
    (
        'failed to resolve image "ghcr.io/acme/base:1" (platform: "linux/amd64"): failed to do '
        'request: Head "https://ghcr.io/v2/acme/base/manifests/1": dial tcp: lookup ghcr.io '
        "on 10.87.0.1:53: no such host",
        UnreachableError,
        "ghcr.io",
    ),
    (
        'failed to resolve image "registry.lan/app:1" (platform: "linux/amd64"): failed to do '
        'request: Head "https://registry.lan/v2/app/manifests/1": tls: failed to verify '
        "certificate: x509: certificate signed by unknown authority",
        UnreachableError,
        "registry.lan",
    ),
    (
        "failed to solve: python:3.12-slim: failed to resolve source metadata for "
        "docker.io/library/python:3.12-slim: failed to do request: Head "
        '"https://registry-1.docker.io/v2/library/python/manifests/3.12-slim": dial tcp '
        "54.1.2.3:443: i/o timeout",
        UnreachableError,
        "registry-1.docker.io",
    ),
]


@pytest.mark.parametrize(("message", "kind", "host"), RECORDED)
def test_network_failures_are_unreachable_registries(
    message: str, kind: type[ConveyorError], host: str
) -> None:
    error = map_dagger_error(query_error(message))

    assert type(error) is kind
    assert isinstance(error, UnreachableError)
    assert error.target == host
    assert exit_code_for(error) == ExitCode.UNREACHABLE
    # the plain-HTTP hint fits none of these
    assert error.hint is not None
    assert '"http": true' not in error.hint


def test_connection_refused_never_gets_the_plain_http_hint() -> None:
    error = map_dagger_error(query_error(LOCALHOST_REFUSED))

    assert error.hint is not None
    assert '"http": true' not in error.hint
    assert "'localhost' is the engine" in error.hint


def test_the_plain_http_hint_follows_the_engines_configuration() -> None:
    error = map_dagger_error(
        query_error(
            'failed to resolve image "registry.lan:5000/app:1" (platform: "linux/amd64"): '
            'failed to do request: Head "https://registry.lan:5000/v2/app/manifests/1": '
            "http: server gave HTTP response to HTTPS client"
        )
    )

    assert isinstance(error, UnreachableError)
    assert error.hint is not None
    assert '{"registries": {"registry.lan:5000": {"http": true}}}' in error.hint
    assert '[registry."registry.lan:5000"] http = true' in error.hint
    assert "127.0.0.1 and localhost already speak plain HTTP" in error.hint


@pytest.mark.parametrize(
    ("message", "image"),
    [
        (
            'failed to resolve image "127.0.0.1:5000/conveyor/python:3.12" '
            '(platform: "linux/amd64"): 127.0.0.1:5000/conveyor/python:3.12: not found',
            "127.0.0.1:5000/conveyor/python:3.12",
        ),
        (
            "failed to solve: 127.0.0.1:5000/conveyor/python:3.12: failed to resolve source "
            "metadata for 127.0.0.1:5000/conveyor/python:3.12: "
            "127.0.0.1:5000/conveyor/python:3.12: not found",
            "127.0.0.1:5000/conveyor/python:3.12",
        ),
    ],
)
def test_a_failed_pull_names_the_image(message: str, image: str) -> None:
    error = map_dagger_error(query_error(message))

    assert type(error) is EngineError
    assert error.message.startswith(f"image {image} was not found in its registry")
    assert error.hint is not None
    assert "no local images" in error.hint


def test_a_refused_pull_names_the_image_and_the_credentials() -> None:
    error = map_dagger_error(
        query_error(
            'failed to resolve image "myacr.azurecr.io/base:1" (platform: "linux/amd64"): '
            "pull access denied, repository does not exist or may require authorization: "
            "server message: insufficient_scope: authorization failed"
        )
    )

    assert type(error) is EngineError
    assert error.message.startswith("image myacr.azurecr.io/base:1: the registry refused access")
    assert error.hint is not None
    assert "docker login" in error.hint


@pytest.mark.parametrize(("module", "shown"), [(True, "'dagger call --debug"), (False, "run")])
def test_the_debug_hint_fits_where_the_error_was_raised(module: bool, shown: str) -> None:
    error = map_dagger_error(query_error("some other engine failure"), module=module)

    assert error.hint is not None
    assert shown in error.hint
    assert ("dagger call" in error.hint) is module
