"""What a Python stage receives: the run's configuration, the engine port, finished outputs.

A :class:`StageContext` is frozen; its helpers go through the same paths as
the rest of Conveyor: :meth:`StageContext.run` is the custom stages' path
(:func:`conveyor.stages.container.run_in_container`: the source mounted,
secrets masked, outputs collected, services started around the command),
:meth:`StageContext.build` and :meth:`StageContext.service` are the engine
port's ``build`` and ``service``.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.config.models import Config
from conveyor.errors import ConveyorError, PolicyError, StageCommandError, UnreachableError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.secrets import Secret
from conveyor.stages.context import DeliveryContext

if TYPE_CHECKING:
    # the engine's values and anyio are imported when a stage runs: a pipeline.py that
    # imports this module is also imported to describe the pipeline (conveyor graph, plan)
    from conveyor.engines.port import BuiltImage, Endpoint, Engine
    from conveyor.engines.port import ServiceBinding as Service

Builtin = Callable[[DeliveryContext, StageInputs], Awaitable[Outputs]]


@dataclass(frozen=True)
class Ran:
    """What :meth:`StageContext.run` ran: its exit code, its output, the files it left.

    Attributes:
        exit_code: The command's exit code (non-zero only with ``check=False``).
        log: The file holding its output (stdout then stderr, secrets masked).
        files: Each collected ``outputs`` path and where it was copied to.
    """

    exit_code: int
    log: Path
    files: Mapping[str, Path] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """The command's output (stdout then stderr), secrets masked."""
        return self.log.read_text(encoding="utf-8")


@dataclass(frozen=True)
class StageContext:
    """The context of one Python stage run.

    Attributes:
        name: This stage's name.
        delivery: The run's context, as the built-in stages get it.
        outputs: The outputs of every stage that has succeeded so far, by
            stage name (``ctx.outputs["build"]["image.ref"]``).
    """

    name: str
    delivery: DeliveryContext
    outputs: StageInputs
    _builtin: Builtin | None = field(default=None, repr=False)
    _runs: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def config(self) -> Config:
        """The validated configuration (conveyor.toml)."""
        return self.delivery.config

    @property
    def engine(self) -> Engine:
        """The container engine (Podman or Dagger) behind the port."""
        return self.delivery.engine

    @property
    def sha(self) -> str:
        """The full git SHA of the source: the image tag."""
        return self.delivery.sha

    @property
    def address(self) -> str:
        """Where publish pushes the image: ``registry/repository:<sha>``."""
        return self.delivery.address

    @property
    def artifacts(self) -> Path:
        """This stage's directory among the run's artifacts (created when first asked)."""
        return self.delivery.stage_dir(self.name)

    def secret(self, name: str) -> str:
        """The value of the environment variable ``name``, masked from now on in what is shown.

        Raises:
            ConfigError: the variable is not set.
        """
        secret = Secret.from_env(name)
        self.delivery.redactor.add(secret)
        return secret.reveal()

    async def run(
        self,
        image: str,
        command: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        services: Sequence[Service] = (),
        outputs: Sequence[str] = (),
        caches: Mapping[str, str] | None = None,
        source: Path | str = ".",
        workdir: str = "/src",
        junit: str | None = None,
        check: bool = True,
    ) -> Ran:
        """Run ``command`` in ``image`` with the source mounted, as a custom stage runs.

        The command is told ``CONVEYOR_SHA``, ``CONVEYOR_IMAGE`` and every
        finished stage's outputs as ``CONVEYOR_<STAGE>_<KEY>``, then ``env``.
        A string command runs with ``sh -c``.  Its output and ``outputs``
        land in this stage's artifacts (a second run of the stage in
        ``run-2/``, and so on).

        Args:
            image: A pinned image (a tag other than ``latest``, or a digest).
            command: The argument vector, or a script for ``sh -c``.
            env: More environment variables.
            secrets: Names of environment variables passed in as secrets.
            services: :class:`Service` values started for the command, by name
                (``built=`` an image this run built: ``image`` is then its id).
            outputs: Paths (relative to ``workdir``) copied back afterwards.
            caches: Cache volume name -> mount path.
            source: The directory mounted (relative to conveyor.toml).
            workdir: Where it is mounted and the command starts.
            junit: A JUnit report among the outputs, counted.
            check: Raise when the command exits non-zero (else return the code).

        Raises:
            PolicyError: the image (or a service's) has no tag or a mutable one.
            StageCommandError: ``check`` and the command exited non-zero.
        """
        # imported when a stage runs: describing the pipeline loads no runner
        from conveyor.stages.container import (  # noqa: PLC0415
            ContainerCommand,
            run_in_container,
            stage_environment,
        )

        # a service running an image this run built (``built=``) is addressed by its id
        for shown in (image, *(s.image for s in services if s.built is None)):
            self._refuse_mutable(shown)
        number = next(self._runs)
        label = self.name if number == 1 else f"{self.name}/run-{number}"
        argv = ("sh", "-c", command) if isinstance(command, str) else tuple(command)
        container = ContainerCommand(
            image=image,
            command=argv,
            source=self.config.resolve(source),
            workdir=workdir,
            env={**stage_environment(self.delivery, self.outputs), **(env or {})},
            secrets=tuple(secrets),
            caches=dict(caches or {}),
            services=tuple(services),
            outputs=tuple(outputs),
            junit=junit,
        )
        log = self.delivery.artifacts / label / "output.log"
        try:
            done = await run_in_container(self.delivery, label, container)
        except StageCommandError as error:
            if check:
                raise
            files = {o: log.parent / o for o in outputs if (log.parent / o).exists()}
            return Ran(error.exit_code, log, files)
        prefix = "output."
        files = {k.removeprefix(prefix): Path(v) for k, v in done.items() if k.startswith(prefix)}
        return Ran(int(done["exit_code"]), Path(done["log"]), files)

    def _refuse_mutable(self, image: str) -> None:
        """As conveyor.toml's stage images: a tag (not ``latest``, not a mutable one) or a digest.

        Raises:
            PolicyError: the image names no tag, or a mutable one.
        """
        if "@" in image:
            return
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag in {"latest", *self.config.policy.mutable_tags}:
            raise PolicyError(
                image,
                f"stage {self.name!r} runs it with a mutable tag "
                f"({tag or 'none, which means latest'})",
                hint="pin a version or a digest, as for the images of conveyor.toml",
            )

    async def build(
        self,
        context: Path | str = ".",
        *,
        dockerfile: str = "Dockerfile",
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        platforms: Sequence[str] = (),
        tag: str | None = None,
    ) -> BuiltImage:
        """Build an image of ``context`` (relative to conveyor.toml) with the engine.

        Raises:
            CommandFailedError: the build failed.
        """
        from conveyor.engines.port import BuildSpec  # noqa: PLC0415 - see TYPE_CHECKING above

        spec = BuildSpec(
            context=self.config.resolve(context),
            dockerfile=dockerfile,
            build_args=dict(build_args or {}),
            target=target,
            platforms=tuple(platforms),
            tag=tag,
            ca_bundle=self.config.run.ca_bundle,
        )
        return await self.engine.build(spec)

    @asynccontextmanager
    async def service(
        self,
        image: BuiltImage,
        port: int,
        *,
        env: Mapping[str, str] | None = None,
        ready_within: float = 60.0,
    ) -> AsyncIterator[Endpoint]:
        """Run ``image`` as a service for the block; yields where this process reaches it.

        ``image`` is one :meth:`build` returned, or the build stage's
        (``conveyor.stages.context.built_image(ctx.outputs["build"])``).  The
        block starts once the port accepts connections; the service is
        removed when it ends, however it ends.

        Raises:
            UnreachableError: the port accepted no connection within ``ready_within`` seconds.
        """
        from conveyor.engines.port import ServiceSpec  # noqa: PLC0415 - see TYPE_CHECKING above

        async with self.engine.service(ServiceSpec(image, port, dict(env or {}))) as endpoint:
            await _wait_until_accepting(endpoint, ready_within, image.local_ref)
            yield endpoint

    async def builtin(self) -> dict[str, str]:
        """Run the built-in stage this one replaces (``@stage(replaces=True)``); its outputs.

        Raises:
            ConveyorError: this stage replaces no built-in.
        """
        if self._builtin is None:
            raise ConveyorError(
                f"stage {self.name!r} called ctx.builtin(), but it replaces no built-in stage",
                hint="declare it @stage(name=..., replaces=True) with a built-in's name",
            )
        return dict(await self._builtin(self.delivery, self.outputs))


async def _wait_until_accepting(endpoint: Endpoint, within: float, image: str) -> None:
    """Return once ``endpoint`` accepts a TCP connection; wait a little longer each time."""
    import anyio  # noqa: PLC0415 - see TYPE_CHECKING above

    delay = 0.05
    with anyio.move_on_after(within):
        while True:
            try:
                stream = await anyio.connect_tcp(endpoint.host, endpoint.port)
            except OSError:
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            await stream.aclose()
            return
    raise UnreachableError(
        "service",
        f"{image} at {endpoint.host}:{endpoint.port}",
        f"its port accepted no connection within {within:g}s",
        hint="check the port the image listens on, or raise ready_within",
    )
