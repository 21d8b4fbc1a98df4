"""Which engine runs a pipeline: ``--engine dagger|podman|auto``.

``auto`` picks Dagger when it can run: inside a Dagger session (``dagger run``
or a module function, where ``DAGGER_SESSION_PORT`` is set), or when a
``dagger`` CLI is on PATH together with a container runtime to start its
engine in (docker or podman) or a remote engine
(``_EXPERIMENTAL_DAGGER_RUNNER_HOST``).  Otherwise it picks Podman.  The
choice always says why, so a run's log shows it.

Pure: it reads only the environment mapping and the PATH it names.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from conveyor.errors import ConfigError, EngineUnavailableError

EngineName = Literal["dagger", "podman"]
ENGINE_CHOICES = ("dagger", "podman", "auto")
RUNTIMES = ("docker", "podman")
SESSION_VARIABLE = "DAGGER_SESSION_PORT"
RUNNER_VARIABLE = "_EXPERIMENTAL_DAGGER_RUNNER_HOST"
INSTALL_DAGGER = (
    "install the Dagger CLI (https://docs.dagger.io/install, e.g. "
    "'curl -fsSL https://dl.dagger.io/dagger/install.sh | BIN_DIR=$HOME/.local/bin sh'), "
    "or run with --engine podman"
)


@dataclass(frozen=True)
class EngineChoice:
    """The engine to use and why.

    Attributes:
        name: ``dagger`` or ``podman``.
        reason: One sentence for the run log.
        cli: The ``dagger`` CLI found on PATH (None inside a session or for Podman).
    """

    name: EngineName
    reason: str
    cli: Path | None = None


def _which(tool: str, env: Mapping[str, str]) -> Path | None:
    found = shutil.which(tool, path=env.get("PATH", ""))
    return Path(found) if found else None


def _dagger(env: Mapping[str, str]) -> tuple[EngineChoice | None, str]:
    """Dagger's choice when it can run here, else None and what is missing."""
    if env.get(SESSION_VARIABLE):
        return EngineChoice(
            "dagger", f"running inside a Dagger session ({SESSION_VARIABLE} is set)"
        ), ""
    cli = _which("dagger", env)
    if cli is None:
        return None, "no 'dagger' CLI on PATH"
    if env.get(RUNNER_VARIABLE):
        return EngineChoice(
            "dagger", f"dagger CLI at {cli} with a remote engine ({RUNNER_VARIABLE} is set)", cli
        ), ""
    for runtime in RUNTIMES:
        found = _which(runtime, env)
        if found is not None:
            return EngineChoice(
                "dagger", f"dagger CLI at {cli} and a container runtime ({found})", cli
            ), ""
    return None, f"the dagger CLI at {cli} has no container runtime (docker or podman) on PATH"


def select_engine(name: str, env: Mapping[str, str]) -> EngineChoice:
    """Choose the engine for ``--engine name``.

    Args:
        name: ``dagger``, ``podman`` or ``auto``.
        env: The environment (``PATH``, ``DAGGER_SESSION_PORT``, ...).

    Returns:
        The engine and the reason for it.

    Raises:
        ConfigError: ``name`` is not an engine.
        EngineUnavailableError: ``dagger`` was asked for and cannot run here.
    """
    if name not in ENGINE_CHOICES:
        raise ConfigError(
            None,
            "--engine",
            f"{name!r} is not an engine",
            hint=f"use one of {', '.join(ENGINE_CHOICES)}",
        )
    if name == "podman":
        return EngineChoice("podman", "asked for with --engine podman")
    choice, missing = _dagger(env)
    if choice is not None:
        if name == "dagger":
            return EngineChoice(
                "dagger", f"asked for with --engine dagger; {choice.reason}", choice.cli
            )
        return choice
    if name == "dagger":
        hint = INSTALL_DAGGER
        if missing.startswith("the dagger CLI"):
            hint = (
                "install Docker or Podman for the Dagger engine to run in, "
                "or run with --engine podman"
            )
        raise EngineUnavailableError("dagger", missing, hint=hint)
    return EngineChoice("podman", f"Dagger cannot run here ({missing}); using Podman")
