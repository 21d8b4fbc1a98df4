"""An engine for commands that must have no side effects (``graph``, ``plan``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from conveyor.errors import EngineUnavailableError

if TYPE_CHECKING:  # the port's values are only named here: graph and plan build none
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from conveyor.engines.port import (
        BuildSpec,
        BuiltImage,
        Endpoint,
        RegistryAuth,
        RemoteImage,
        RunResult,
        RunSpec,
        ServiceSpec,
    )


class NoEngine:
    """Refuses every container operation: planning only describes them."""

    name = "none"

    def _refuse(self, operation: str) -> NoReturn:
        raise EngineUnavailableError("none", f"{operation} was called while planning")

    async def run(self, spec: RunSpec) -> RunResult:
        self._refuse("run")

    async def build(self, spec: BuildSpec) -> BuiltImage:
        self._refuse("build")

    async def export_tarball(self, image: BuiltImage, dest: Path) -> Path:
        self._refuse("export_tarball")

    async def inspect_remote(
        self, address: str, *, insecure: bool = False, auth: RegistryAuth | None = None
    ) -> RemoteImage | None:
        self._refuse("inspect_remote")

    async def publish(
        self,
        image: BuiltImage,
        address: str,
        *,
        insecure: bool = False,
        auth: RegistryAuth | None = None,
    ) -> str:
        self._refuse("publish")

    def service(self, spec: ServiceSpec) -> AbstractAsyncContextManager[Endpoint]:
        self._refuse("service")
