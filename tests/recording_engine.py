"""An engine that forwards every port call to a real engine and records what was asked.

Not a double: the inner engine does the work; the record shows which port
calls a stage made and with which values.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from conveyor.engines.port import (
    BuildSpec,
    BuiltImage,
    Endpoint,
    Engine,
    RegistryAuth,
    RemoteImage,
    RunResult,
    RunSpec,
    ServiceSpec,
)


class RecordingEngine:
    """Forwards every port call to a real engine and records what was asked."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, Any]] = []

    async def run(self, spec: RunSpec) -> RunResult:
        self.calls.append(("run", spec))
        return await self.inner.run(spec)

    async def build(self, spec: BuildSpec) -> BuiltImage:
        self.calls.append(("build", spec))
        return await self.inner.build(spec)

    async def export_tarball(self, image: BuiltImage, dest: Path) -> Path:
        self.calls.append(("export_tarball", dest))
        return await self.inner.export_tarball(image, dest)

    async def inspect_remote(
        self, address: str, *, insecure: bool = False, auth: RegistryAuth | None = None
    ) -> RemoteImage | None:
        self.calls.append(("inspect_remote", address))
        return await self.inner.inspect_remote(address, insecure=insecure, auth=auth)

    async def publish(
        self,
        image: BuiltImage,
        address: str,
        *,
        insecure: bool = False,
        auth: RegistryAuth | None = None,
    ) -> str:
        self.calls.append(("publish", address))
        return await self.inner.publish(image, address, insecure=insecure, auth=auth)

    def service(self, spec: ServiceSpec) -> AbstractAsyncContextManager[Endpoint]:
        self.calls.append(("service", spec))
        return self.inner.service(spec)

    def kinds(self) -> list[str]:
        """The port operations called, in order."""
        return [kind for kind, _ in self.calls]
