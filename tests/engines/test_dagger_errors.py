"""Every dagger-io exception becomes a Conveyor error that says what to do."""

from __future__ import annotations

import dagger
import pytest
from dagger_query import dagger_error_classes, query_error

from conveyor.engines.dagger_errors import map_dagger_error
from conveyor.errors import (
    CommandFailedError,
    ConveyorError,
    EngineError,
    EngineUnavailableError,
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
