"""What a podman engine's session left, and which podman commands it started (real podman).

Each test has its own engine, whose session label finds exactly what it
made, whatever other tests run beside it.
"""

from __future__ import annotations

import subprocess

from conveyor.engines.podman import PodmanEngine
from conveyor.engines.podman_args import LABEL, SESSION_LABEL
from started_processes import Started


def podman(*args: str) -> str:
    done = subprocess.run(
        ["podman", *args], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
    return done.stdout


def leftovers(engine: PodmanEngine) -> tuple[list[str], list[str]]:
    """The containers and networks of ``engine``'s session that are still there."""
    label = f"label={SESSION_LABEL}={engine.session}"
    containers = podman("ps", "-a", "--filter", label, "--format", "{{.Names}}").split()
    networks = podman("network", "ls", "--filter", label, "--format", "{{.Name}}").split()
    return containers, networks


def of_kind(engine: PodmanEngine, kind: str) -> list[str]:
    """The names of the session's containers labelled ``io.conveyor.engine=kind``."""
    return podman(
        "ps", "-a", "--filter", f"label={SESSION_LABEL}={engine.session}",
        "--filter", f"label={LABEL}={kind}", "--format", "{{.Names}}",
    ).split()  # fmt: skip


class PodmanStarted(Started):
    """:class:`started_processes.Started`, with the podman commands tests look for."""

    def runs(self) -> list[tuple[str, ...]]:
        """The ``podman run --rm`` commands: the run's own container, never a service's."""
        return [tuple(c) for c in self.commands if c[1:3] == ["run", "--rm"]]

    def removals(self) -> list[tuple[str, ...]]:
        """The ``podman rm`` and ``podman network rm`` commands."""
        return [tuple(c) for c in self.commands if c[1] == "rm" or c[1:3] == ["network", "rm"]]
