"""Dagger's exceptions translated into Conveyor's, at the adapter boundary.

::

    dagger-io                         Conveyor
    ExecError                      -> CommandFailedError   (command, exit code, stderr tail)
    QueryError (any other)         -> EngineError          (the engine refused an operation)
    ProvisionError, DownloadError,
    SessionError                   -> EngineUnavailableError (no engine could be started)
    ClientConnectionError,
    TransportError                 -> EngineUnavailableError (the engine did not answer)
    InvalidQueryError, ClientError,
    DaggerError (anything else)    -> EngineError

Every text taken from the engine goes through the run's :class:`Redactor`.
"""

from __future__ import annotations

import dagger

from conveyor.errors import (
    CommandFailedError,
    ConveyorError,
    EngineError,
    EngineUnavailableError,
)
from conveyor.secrets import Redactor

INSTALL_HINT = (
    "install the Dagger CLI (https://docs.dagger.io/install, e.g. "
    "'curl -fsSL https://dl.dagger.io/dagger/install.sh | BIN_DIR=$HOME/.local/bin sh') "
    "and a container runtime (Docker or Podman), or run with --engine podman"
)


def map_dagger_error(exc: dagger.DaggerError, redact: Redactor | None = None) -> ConveyorError:
    """The Conveyor error that says what ``exc`` means to a user.

    Args:
        exc: An exception raised by dagger-io.
        redact: Masks known secret values in text that came from the engine.

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
        return EngineError(
            f"the Dagger engine refused the operation: {clean(str(exc))}",
            hint="the message above is the engine's; 'dagger call' with --debug shows the query",
        )
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
