"""The services of one podman run: a network of their own, each reachable by name.

For :meth:`~conveyor.engines.podman.PodmanEngine.run` with
``RunSpec.services``: a network made for the run (``podman network create``
with a unique name, labelled with the engine's session so that the session
sweep finds what an interrupted run left), each service a detached container
on it with ``--network-alias NAME``, and the run's container attached to the
same network, where podman's DNS (aardvark-dns) resolves the aliases.

A service is ready when its port accepts a TCP connection at its address on
that network.  The host connects to that address itself: rootful podman's
bridge networks are interfaces of the host, so no probe image, no tool in
the service's image and no published port (whose forwarder would accept a
connection before the service does) is needed.  Rootless podman keeps its
networks in a namespace of its own, which the host cannot reach: services
are refused there with a clear error.

Everything made is removed when the context ends, however it ends: services
first, then the network (forced, so that nothing attached keeps it alive),
by the engine's :class:`Disposer` (which may do it in the background, see
:meth:`~conveyor.engines.podman.PodmanEngine.removing_in_background`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from conveyor.engines.podman_args import label_args, pairs
from conveyor.engines.port import ServiceBinding
from conveyor.errors import EngineUnavailableError, ServiceStartError
from conveyor.process import ProcessResult
from conveyor.secrets import Secret

DEFAULT_SERVICE_TIMEOUT = 60.0
"""Seconds a service may take from its start until its port accepts connections."""
CONNECT_TIMEOUT = 1.0
"""Seconds one connection attempt to a service's port may take."""
FIRST_INTERVAL = 0.05
"""Seconds between the first two looks at a service (doubling, up to :data:`MAX_INTERVAL`)."""
MAX_INTERVAL = 0.5
LOG_LINES = 20
"""How many of a failed service's last log lines its error shows."""


class PodmanExec(Protocol):
    """Runs one podman command (the engine's runner: redacted, with its install hint)."""

    async def __call__(
        self,
        argv: Sequence[str],
        *,
        secrets: Sequence[Secret] = (),
        check: bool = True,
        failure_hint: str | None = None,
    ) -> ProcessResult: ...


class Disposer(Protocol):
    """Removes containers, then a network (the engine's: now, or in the background)."""

    async def __call__(self, containers: Sequence[str], network: str | None = None) -> None: ...


@dataclass(frozen=True)
class ServiceState:
    """What ``podman container inspect`` says of a service container."""

    running: bool
    exit_code: int
    address: str | None


@dataclass
class PodmanServices:
    """Starts the services of runs for one engine (see the module docstring).

    Args:
        podman_exec: Runs a podman command.
        podman: The podman executable.
        session: The engine's session label value, put on networks and services.
        dispose: Removes the services, then the network, however the run ended.
        ready_within: Seconds each service may take until its port accepts connections.
    """

    podman_exec: PodmanExec
    podman: str
    session: str
    dispose: Disposer
    ready_within: float = DEFAULT_SERVICE_TIMEOUT
    _rootless_answer: bool | None = field(default=None, init=False, repr=False)

    @asynccontextmanager
    async def network(self, services: Sequence[ServiceBinding]) -> AsyncIterator[list[str]]:
        """Start ``services`` on a new network, wait for their ports; yield the run's args.

        Yields:
            ``["--network", NAME]`` for the run's ``podman run``; ``[]`` (and
            nothing made) without services.

        Raises:
            ServiceStartError: a service could not be started, exited, or did
                not accept connections on its port within ``ready_within``.
            EngineUnavailableError: podman runs rootless (see the module docstring).
        """
        if not services:
            yield []
            return
        podman = self.podman
        if await self._rootless():
            raise EngineUnavailableError(
                "podman",
                "a stage's services need rootful podman: rootless podman's networks are not "
                "reachable from the host, where Conveyor waits for the services' ports",
                hint="run podman as root (sudo), or use the Dagger engine (--engine dagger)",
            )
        network = f"conveyor-net-{uuid.uuid4().hex[:12]}"
        # Named before they are made: a start cut short still leaves a name to remove.
        names = [f"conveyor-svc-{uuid.uuid4().hex[:12]}" for _ in services]
        try:
            await self.podman_exec(
                [podman, "network", "create", *label_args("network", self.session), network],
                failure_hint="podman could not create the run's network; see 'conveyor doctor'",
            )
            for binding, name in zip(services, names, strict=True):
                await self._start(network, binding, name)
            for binding, name in zip(services, names, strict=True):
                await self._wait_ready(network, binding, name)
            yield ["--network", network]
        finally:
            await self.dispose(names, network)

    async def _rootless(self) -> bool:
        """Whether podman runs rootless; asked once (``podman info`` takes half a second).

        A local podman started by root is rootful: nothing to ask.
        """
        if self._rootless_answer is None and os.geteuid() == 0 and not _remote():
            self._rootless_answer = False
        if self._rootless_answer is None:
            info = await self.podman_exec(
                [self.podman, "info", "--format", "{{.Host.Security.Rootless}}"]
            )
            self._rootless_answer = info.stdout.strip() == "true"
        return self._rootless_answer

    async def _start(self, network: str, binding: ServiceBinding, name: str) -> None:
        argv = [
            self.podman, "run", "-d", "--name", name, *label_args("service", self.session),
            "--network", network, "--network-alias", binding.name,
            "--pull=missing",
            *pairs("-e", binding.env),
            binding.image, *binding.command,
        ]  # fmt: skip
        result = await self.podman_exec(argv, check=False)
        if not result.ok:
            last = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.exit_code}"]
            raise ServiceStartError(
                binding.name, binding.shown_image, binding.port, f"could not be started: {last[0]}"
            )

    async def _wait_ready(self, network: str, binding: ServiceBinding, name: str) -> None:
        """Return once ``binding.port`` accepts a connection; raise when it exits or time is up."""
        interval = FIRST_INTERVAL
        with anyio.move_on_after(self.ready_within):
            while True:
                state = await _inspect(self.podman_exec, self.podman, name, network)
                if not state.running:
                    raise ServiceStartError(
                        binding.name,
                        binding.shown_image,
                        binding.port,
                        f"exited with code {state.exit_code} before its port accepted connections",
                        await _logs(self.podman_exec, self.podman, name),
                    )
                if state.address is not None and await accepts(state.address, binding.port):
                    return
                await anyio.sleep(interval)
                interval = min(interval * 2, MAX_INTERVAL)
        raise ServiceStartError(
            binding.name,
            binding.shown_image,
            binding.port,
            f"did not accept connections on port {binding.port} within {self.ready_within:g}s",
            await _logs(self.podman_exec, self.podman, name),
        )


async def _inspect(podman_exec: PodmanExec, podman: str, name: str, network: str) -> ServiceState:
    result = await podman_exec([podman, "container", "inspect", name])
    found: list[dict[str, Any]] = json.loads(result.stdout)
    state = found[0].get("State", {})
    networks = found[0].get("NetworkSettings", {}).get("Networks") or {}
    address = (networks.get(network) or {}).get("IPAddress") or None
    return ServiceState(
        running=bool(state.get("Running")),
        exit_code=int(state.get("ExitCode", 0)),
        address=address,
    )


async def accepts(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection within :data:`CONNECT_TIMEOUT`."""
    with anyio.move_on_after(CONNECT_TIMEOUT):
        try:
            stream = await anyio.connect_tcp(host, port)
        except OSError:
            return False
        await stream.aclose()
        return True
    return False


async def _logs(podman_exec: PodmanExec, podman: str, name: str) -> str:
    """The service's last log lines (masked by the engine's runner like all its output)."""
    result = await podman_exec([podman, "logs", "--tail", str(LOG_LINES), name], check=False)
    return "\n".join(part.rstrip() for part in (result.stdout, result.stderr) if part.strip())


def _remote() -> bool:
    """Whether podman talks to a service elsewhere (``CONTAINER_HOST``, a remote build)."""
    return bool(os.environ.get("CONTAINER_HOST") or os.environ.get("CONTAINER_CONNECTION"))
