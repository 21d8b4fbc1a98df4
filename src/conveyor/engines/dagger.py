"""``DaggerEngine``: the engine port on dagger-io.

Each operation builds its lazy chain in :mod:`conveyor.engines.dagger_chains`
and awaits it here; dagger-io's exceptions become Conveyor's in
:mod:`conveyor.engines.dagger_errors`.  :func:`open_dagger_engine` owns the
connection for a run started outside Dagger; a Dagger module builds the
engine from ``dag`` instead.

Images built by this engine live in the engine: a :class:`BuiltImage` names
them by the ID of their (first) container, and the engine keeps the lazy
containers of every platform variant for export, publish and service.  There
is no local image store, so ``BuiltImage.local_ref`` is a label for logs
(``dagger-container-<hash of the ID>``), not a name any tool can pull.

Registry lookups go through the engine too (``Container.from`` resolves a
reference without pulling): the tag check before a push and the read-back of
the platforms a push published see what the push sees -- the engine's
network, its registry configuration and CAs, the session's credentials.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
    suppress,
)
from pathlib import Path
from typing import Literal, TextIO, TypeVar

import anyio
import dagger
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conveyor.engines import dagger_chains as chains
from conveyor.engines.dagger_errors import map_dagger_error, read_message
from conveyor.engines.port import (
    BuildSpec,
    BuiltImage,
    Endpoint,
    RegistryAuth,
    RemoteImage,
    RunResult,
    RunSpec,
    ServiceBinding,
    ServiceSpec,
)
from conveyor.errors import ConveyorError, EngineError, PolicyError, ServiceStartError
from conveyor.policy.reference import parse
from conveyor.secrets import Redactor, Secret
from conveyor.telemetry.trace_link import shown_trace_url

T = TypeVar("T")

ServiceAccess = Literal["tunnel", "direct"]
"""How the caller reaches a service: through a host tunnel, or directly (module runtime)."""

MissingPlatforms = Literal["fail", "warn"]
"""What publish does when the registry holds fewer platforms than were built."""

REMOTE_LABELS = ("org.opencontainers.image.revision",)
"""The config labels :meth:`DaggerEngine.inspect_remote` reads (what publish checks)."""

TRACE_URL_TIMEOUT = 10.0
"""Seconds the engine may take to say where the run's Dagger Cloud trace is."""

DEFAULT_SERVICE_TIMEOUT = 60.0
"""Seconds a run's service may take to start and open its port."""
SERVICE_STOP_TIMEOUT = 60.0
"""Seconds stopping a run's services may take; the session's end stops what is left."""

_SHA_TAG = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_PUBLISHED = re.compile(r".+@sha256:[0-9a-f]{64}")


class DaggerEngine:
    """The container operations of the port, run by a Dagger engine.

    Args:
        client: A connected dagger-io client (``dag`` inside a module).
        known_sources: Local paths whose content already is a ``dagger.Directory``
            (a module's ``source`` argument exported for the core to read).
        service_access: ``"tunnel"`` when the caller runs on the host (the
            service is forwarded to a local port), ``"direct"`` inside a module,
            whose runtime container reaches a started service's endpoint.
        ca_bundle: The run's CA bundle (mounted into run containers by the chains;
            registry lookups use the engine's own CAs).
        exclude: Patterns left out when host directories are uploaded.
        module_workdir: Inside a module, its scratch working directory (the
            runtime's current directory): local paths below it that are not
            ``known_sources`` (files the core wrote, such as the image tarball
            a Trivy container scans) are loaded with ``currentModule.workdir``,
            since a module has no host to upload them from.
        missing_platforms: ``fail`` (raise) or ``warn`` (write to ``warn_to``)
            when a multi-platform publish holds fewer platforms than asked.
        warn_to: Where warnings go (stderr: the CI log, or the function's log).
        service_timeout: Seconds a run's service may take to start and open its port.
    """

    name = "dagger"

    def __init__(
        self,
        client: dagger.Client,
        *,
        known_sources: Mapping[Path, dagger.Directory] | None = None,
        service_access: ServiceAccess = "tunnel",
        ca_bundle: Path | None = None,
        exclude: Sequence[str] = chains.DEFAULT_EXCLUDE,
        module_workdir: Path | None = None,
        missing_platforms: MissingPlatforms = "fail",
        warn_to: TextIO | None = None,
        service_timeout: float = DEFAULT_SERVICE_TIMEOUT,
    ) -> None:
        self.client = client
        self.service_timeout = service_timeout
        self.sources = chains.Sources(client, known_sources, exclude, module_workdir)
        self.service_access = service_access
        self.ca_bundle = ca_bundle
        self.in_module = module_workdir is not None
        self.missing_platforms = missing_platforms
        self._warn_to = warn_to
        self._images: dict[str, list[dagger.Container]] = {}
        self._redact = Redactor()

    def _error(self, exc: dagger.DaggerError) -> ConveyorError:
        return map_dagger_error(exc, self._redact, module=self.in_module)

    async def _await(self, work: Awaitable[T], secrets: Sequence[Secret] = ()) -> T:
        for value in secrets:
            self._redact.add(value)
        try:
            return await work
        except dagger.DaggerError as exc:
            raise self._error(exc) from exc

    async def run(self, spec: RunSpec) -> RunResult:
        """Run ``spec.command``; its exit code is returned, not raised.

        ``spec.services`` are started first, each bounded by
        ``service_timeout`` (``Service.start`` returns once the engine's health
        check found the exposed port open), bound to the command's container
        by name, and stopped afterwards, however the run ends.

        Raises:
            ServiceStartError: a service did not start in time, or its image
                is a local ``localhost/...`` name the engine cannot pull.
        """
        for value in spec.secrets:
            self._redact.add(value)
        for binding in spec.services:
            _refuse_local_name(binding)
        async with self._started(spec.services) as services:
            ctr = chains.run_container(self.client, spec, self.sources, services)
            try:
                ctr = await ctr.sync()
                exit_code = await ctr.exit_code()
                stdout = await ctr.stdout()
                stderr = await ctr.stderr()
            except dagger.ExecError as exc:
                # Exit codes outside ANY (killed by a signal) still are results.
                return RunResult(exc.exit_code, self._redact(exc.stdout), self._redact(exc.stderr))
            except dagger.DaggerError as exc:
                raise self._error(exc) from exc
            exported = await self._export_outputs(ctr, spec)
        return RunResult(exit_code, self._redact(stdout), self._redact(stderr), exported)

    @asynccontextmanager
    async def _started(
        self, bindings: Sequence[ServiceBinding]
    ) -> AsyncIterator[dict[str, dagger.Service]]:
        """Start each service, waiting for its port; stop them all when the context ends."""
        services: dict[str, dagger.Service] = {}
        try:
            for binding in bindings:
                # kept before it starts: a start cut short is stopped too
                built = self._variants(binding.built)[0] if binding.built is not None else None
                services[binding.name] = chains.bound_service(self.client, binding, built)
                services[binding.name] = await self._start(binding, services[binding.name])
            yield services
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(SERVICE_STOP_TIMEOUT):
                for svc in services.values():
                    with suppress(dagger.DaggerError):
                        await svc.stop()

    async def _start(self, binding: ServiceBinding, svc: dagger.Service) -> dagger.Service:
        with anyio.move_on_after(self.service_timeout):
            try:
                return await svc.start()
            except dagger.DaggerError as exc:
                reason = self._redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
                raise ServiceStartError(
                    binding.name,
                    binding.shown_image,
                    binding.port,
                    f"did not start on the Dagger engine: {reason or type(exc).__name__}",
                ) from exc
        raise ServiceStartError(
            binding.name,
            binding.shown_image,
            binding.port,
            f"did not accept connections on port {binding.port} within "
            f"{self.service_timeout:g}s (the Dagger engine's health check)",
        )

    async def _export_outputs(self, ctr: dagger.Container, spec: RunSpec) -> dict[str, Path]:
        if not spec.outputs or spec.export_dir is None:
            return {}
        exported: dict[str, Path] = {}
        for output in spec.outputs:
            inside = chains.output_path(spec, output)
            dest = spec.export_dir / output
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                await ctr.file(inside).export(str(dest))
            except dagger.QueryError:
                try:
                    await ctr.directory(inside).export(str(dest))
                except dagger.QueryError:
                    continue  # not produced: a test run that crashed early
            exported[output] = dest
        return exported

    async def build(self, spec: BuildSpec) -> BuiltImage:
        """Build every platform of ``spec``; a failed build raises ``CommandFailedError``."""
        variants = chains.build_variants(self.client, spec, self.sources)
        synced = [await self._await(ctr.sync(), spec.secrets) for ctr in variants]
        image_id = await self._await(synced[0].id())
        self._images[image_id] = synced
        local_ref = "dagger-container-" + hashlib.sha256(image_id.encode()).hexdigest()[:12]
        return BuiltImage(id=image_id, local_ref=local_ref, platforms=tuple(spec.platforms))

    def _variants(self, image: BuiltImage) -> list[dagger.Container]:
        try:
            return self._images[image.id]
        except KeyError:
            raise EngineError(
                f"image {image.local_ref} was not built by this Dagger engine",
                hint="build and use an image within the same run",
            ) from None

    def container(self, image: BuiltImage) -> dagger.Container:
        """The Dagger container of ``image`` (its first platform), for module functions."""
        return self._variants(image)[0]

    async def export_tarball(self, image: BuiltImage, dest: Path) -> Path:
        """Write ``image`` (all its platforms) as an OCI archive at ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        archive = chains.tarball(self.client, self._variants(image))
        await self._await(archive.export(str(dest)))
        return dest

    async def inspect_remote(
        self, address: str, *, insecure: bool = False, auth: RegistryAuth | None = None
    ) -> RemoteImage | None:
        """What the registry holds at ``address``, resolved by the engine.

        ``insecure`` is the engine's configuration in Dagger, not a per-call
        option (see docs/dagger.md).  Only the engine's "REF: not found" (every
        registry host answered 404 for this reference) means absent; any other
        failure raises, so a registry that cannot be asked never lets a push
        through.

        Returns:
            The digest (``imageRef``'s, the index digest of a multi-platform
            image) and the labels of :data:`REMOTE_LABELS` the config carries;
            ``None`` when the tag is absent.

        Raises:
            UnreachableError: the engine could not reach the registry.
            EngineError: access refused, or any other engine error.
        """
        ctr = chains.remote_image(self.client, address, auth)
        secrets = [auth.password] if auth is not None else []
        for value in secrets:
            self._redact.add(value)
        try:
            reference = await ctr.image_ref()
        except dagger.ExecError as exc:
            raise self._error(exc) from exc
        except dagger.QueryError as exc:
            if _absent(str(exc), address):
                return None
            raise self._error(exc) from exc
        except dagger.DaggerError as exc:
            raise self._error(exc) from exc
        digest = reference.rpartition("@")[2]
        if not digest.startswith("sha256:"):
            raise EngineError(f"the Dagger engine resolved {address} to {reference!r}, no digest")
        labels: dict[str, str] = {}
        for name in REMOTE_LABELS:
            label = await self._await(ctr.label(name))
            if label is not None:
                labels[name] = label
        return RemoteImage(digest, labels)

    async def publish(
        self,
        image: BuiltImage,
        address: str,
        *,
        insecure: bool = False,
        auth: RegistryAuth | None = None,
    ) -> str:
        """Push ``image`` to ``address`` (tagged with the git SHA); return ``address@sha256:...``.

        ``insecure`` registries are the engine's configuration in Dagger, not
        a per-push option: an HTTPS answer refused by a plain-HTTP registry
        says how to allow it.  After a multi-platform push every platform is
        read back through the engine; one the registry does not hold fails the
        publish (or warns, ``missing_platforms="warn"``).

        Raises:
            PolicyError: ``address`` is not tagged with a full git SHA.
            UnreachableError: the engine could not reach the registry.
            EngineError: the push was refused, or platforms are missing.
        """
        ref = parse(address)
        if ref.digest is not None or ref.tag is None or not _SHA_TAG.fullmatch(ref.tag):
            raise PolicyError(
                address,
                "a published image is tagged with the full git SHA of its source",
                hint="publish to registry/repository:<40-hex commit SHA>",
            )
        base, variants = chains.publisher(self.client, self._variants(image), address, auth)
        secrets = [auth.password] if auth is not None else []
        published = await self._await(
            base.publish(address, platform_variants=variants or None), secrets
        )
        if not _PUBLISHED.fullmatch(published):
            raise EngineError(f"the Dagger engine published {address} but returned {published!r}")
        if image.platforms:
            await self._check_platforms(published, image.platforms, auth)
        return published

    async def published_platforms(
        self, reference: str, wanted: Sequence[str], auth: RegistryAuth | None = None
    ) -> dict[str, str | None]:
        """For each wanted platform, the platform the registry serves for it (``None``: none).

        An index without the platform is the engine's "not found" for its
        manifest; a single manifest is served for any platform, so the
        config's own platform is what tells.
        """
        served: dict[str, str | None] = {}
        for platform in wanted:
            ctr = chains.platform_image(self.client, reference, platform, auth)
            try:
                served[platform] = str(await ctr.platform())
            except dagger.ExecError as exc:
                raise self._error(exc) from exc
            except dagger.QueryError as exc:
                if read_message(str(exc)).kind != "not-found":
                    raise self._error(exc) from exc
                served[platform] = None
            except dagger.DaggerError as exc:
                raise self._error(exc) from exc
        return served

    async def _check_platforms(
        self, published: str, wanted: Sequence[str], auth: RegistryAuth | None
    ) -> None:
        served = await self.published_platforms(published, wanted, auth)
        missing = [p for p, got in served.items() if got is None or _platform(got) != _platform(p)]
        if not missing:
            return
        found = sorted({got for got in served.values() if got is not None})
        message = (
            f"{published} was published without {', '.join(missing)}: the registry serves "
            f"{', '.join(found) or 'no platform'} for it (a base image without those "
            "platforms builds them as copies of the one it has)"
        )
        if self.missing_platforms == "warn":
            print(f"warning: {message}", file=self._warn_to or sys.stderr)
            return
        raise EngineError(
            message,
            hint="use a base image that has every platform of app.platforms, drop the missing "
            'ones from app.platforms, or set app.missing_platforms = "warn"',
        )

    async def trace_url(self) -> str | None:
        """The Dagger Cloud URL of this session's trace; ``None`` without Dagger Cloud.

        ``Cloud.traceURL`` is ``https://dagger.cloud/<organization>/traces/<trace
        id>`` when the session's client has a Dagger Cloud organization
        (``DAGGER_CLOUD_TOKEN``, or ``dagger login``); without one the engine
        answers with an error, "no cloud organization configured" (Dagger's
        ``core/schema/cloud.go``).  That error, any other, and no answer within
        :data:`TRACE_URL_TIMEOUT` all give ``None``: a run never fails for its
        link.  The answer is checked by
        :func:`conveyor.telemetry.trace_link.shown_trace_url`.
        """
        with anyio.move_on_after(TRACE_URL_TIMEOUT):
            try:
                answer = await self.client.cloud().trace_url()
            except dagger.DaggerError:
                return None
            return shown_trace_url(answer, self._redact)
        return None

    @asynccontextmanager
    async def service(self, spec: ServiceSpec) -> AsyncIterator[Endpoint]:
        """Run the image as a service and yield where it answers."""
        svc = chains.service(self._variants(spec.image)[0], spec)
        if self.service_access == "direct":
            started = await self._await(svc.start())
            address = await self._await(started.endpoint(port=spec.port))
            stop = started
        else:
            stop = await self._await(chains.host_tunnel(self.client, svc).start())
            address = await self._await(stop.endpoint())
        try:
            yield _endpoint(address)
        finally:
            await self._await(stop.stop())


def _refuse_local_name(binding: ServiceBinding) -> None:
    """Refuse a ``localhost/...`` image: Dagger would ask a registry named ``localhost`` for it."""
    if binding.built is None and binding.image.split("/", 1)[0] == "localhost":
        raise ServiceStartError(
            binding.name,
            binding.image,
            binding.port,
            "is a local image name: the Dagger engine takes 'localhost' for a registry host "
            "and has no local image store",
            hint="push the image to a registry and name it by its registry address "
            "(a loopback registry works: 127.0.0.1:5000/...)",
        )


def _absent(message: str, address: str) -> bool:
    """Whether the engine's error says the registry has no ``address``, and nothing else."""
    read = read_message(message)
    if read.kind != "not-found" or read.image is None:
        return False
    try:
        return parse(read.image) == parse(address)
    except ConveyorError:
        return False


def _platform(text: str) -> str:
    """``os/arch[/variant]`` as the engine normalises it (``linux/arm64/v8`` is ``linux/arm64``)."""
    parts = text.strip().lower().split("/")
    if parts[1:2] == ["arm64"] and parts[2:] == ["v8"]:
        parts = parts[:2]
    return "/".join(parts)


def _endpoint(address: str) -> Endpoint:
    """``host:port`` (as ``Service.endpoint`` returns it) as an :class:`Endpoint`."""
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(f"the Dagger engine gave an unusable service endpoint {address!r}")
    return Endpoint(host=host, port=int(port))


@contextmanager
def _process_env(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set environment variables for the engine session's start, then restore them.

    dagger-io starts the ``dagger session`` process with this process's
    environment; that is how ``TRACEPARENT`` reaches the CLI.
    """
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is not None:
                os.environ[name] = value
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


AbstractConnection = AbstractAsyncContextManager[DaggerEngine]
"""Opens the engine's connection for the run (see :func:`open_dagger_engine`)."""

ParentContext = Callable[[], Context | None]
"""Gives the trace context the session should open in, when the session opens."""


class DaggerSession:
    """The port on a Dagger engine session that opens at the first operation.

    Opened then, not before the run, so that the session (the ``dagger
    session`` process dagger-io starts, and its spans) opens inside the run's
    span: ``parent()`` is asked for the context at that moment, and its W3C
    traceparent is handed to the session.  Every operation waits for the one
    connection; a session that cannot start fails the operation (and so the
    stage) with ``EngineUnavailableError``.

    Args:
        connect: Opens the connection with a traceparent; yields the engine.
        parent: The context to open the session in (``None``: ``traceparent``).
        traceparent: The fallback, e.g. the process's ``TRACEPARENT``.
    """

    name = "dagger"

    def __init__(
        self,
        connect: Callable[[str | None], AbstractConnection],
        *,
        parent: ParentContext | None = None,
        traceparent: str | None = None,
    ) -> None:
        self._connect = connect
        self._parent = parent
        self._traceparent = traceparent
        self._stack = AsyncExitStack()
        self._engine: DaggerEngine | None = None
        self._lock = anyio.Lock()
        self.opened_with: str | None = None
        """The traceparent the session was opened with (``None`` before it opens)."""

    def session_traceparent(self) -> str | None:
        """The traceparent for the session: ``parent()``'s span, else the fallback."""
        context = self._parent() if self._parent is not None else None
        if context is not None:
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier, context=context)
            if carrier.get("traceparent"):
                return carrier["traceparent"]
        return self._traceparent

    async def engine(self) -> DaggerEngine:
        """The connected engine (connecting now, once, if it is not yet)."""
        async with self._lock:
            if self._engine is None:
                traceparent = self.session_traceparent()
                self._engine = await self._stack.enter_async_context(self._connect(traceparent))
                self.opened_with = traceparent or ""
            return self._engine

    async def aclose(self) -> None:
        """Close the session if it was opened."""
        await self._stack.aclose()

    async def run(self, spec: RunSpec) -> RunResult:
        """See :meth:`DaggerEngine.run`."""
        return await (await self.engine()).run(spec)

    async def build(self, spec: BuildSpec) -> BuiltImage:
        """See :meth:`DaggerEngine.build`."""
        return await (await self.engine()).build(spec)

    async def export_tarball(self, image: BuiltImage, dest: Path) -> Path:
        """See :meth:`DaggerEngine.export_tarball`."""
        return await (await self.engine()).export_tarball(image, dest)

    async def inspect_remote(
        self, address: str, *, insecure: bool = False, auth: RegistryAuth | None = None
    ) -> RemoteImage | None:
        """See :meth:`DaggerEngine.inspect_remote`."""
        engine = await self.engine()
        return await engine.inspect_remote(address, insecure=insecure, auth=auth)

    async def publish(
        self,
        image: BuiltImage,
        address: str,
        *,
        insecure: bool = False,
        auth: RegistryAuth | None = None,
    ) -> str:
        """See :meth:`DaggerEngine.publish`."""
        engine = await self.engine()
        return await engine.publish(image, address, insecure=insecure, auth=auth)

    async def trace_url(self) -> str | None:
        """See :meth:`DaggerEngine.trace_url`; ``None`` when the session never opened.

        A run that never used the engine has no trace there, and opening a
        session only to ask would start an engine.
        """
        if self._engine is None:
            return None
        return await self._engine.trace_url()

    @asynccontextmanager
    async def service(self, spec: ServiceSpec) -> AsyncIterator[Endpoint]:
        """See :meth:`DaggerEngine.service`."""
        engine = await self.engine()
        async with engine.service(spec) as endpoint:
            yield endpoint


@asynccontextmanager
async def open_dagger_engine(
    *,
    traceparent: str | None = None,
    parent: ParentContext | None = None,
    cli: Path | None = None,
    log_output: TextIO | None = None,
    ca_bundle: Path | None = None,
    connect_timeout: float = 60.0,
    missing_platforms: MissingPlatforms = "fail",
) -> AsyncIterator[DaggerSession]:
    """A Dagger engine session for the length of a run, opened at its first operation.

    Inside ``dagger run`` the existing session is reused.  Otherwise dagger-io
    starts ``dagger session`` with ``cli`` (the CLI the engine selection
    found) or with the CLI it downloads for its own version.

    Args:
        traceparent: The W3C trace context to open the session in when
            ``parent`` gives none (the process's ``TRACEPARENT``).
        parent: Asked, when the session opens, for the context to open it in
            (the run span's: :func:`conveyor.telemetry.setup.run_context`);
            queries also carry the current span in their headers.
        cli: Path of the ``dagger`` CLI to start the session with.
        log_output: Where the engine's progress is written (stderr by default: none).
        ca_bundle: The run's CA bundle.
        connect_timeout: Seconds to wait for the session to answer.
        missing_platforms: See :class:`DaggerEngine`.

    Yields:
        The port; an operation raises ``EngineUnavailableError`` when no engine
        could be started or reached.
    """

    @asynccontextmanager
    async def connect(session_traceparent: str | None) -> AsyncIterator[DaggerEngine]:
        async with _connection(
            traceparent=session_traceparent,
            cli=cli,
            log_output=log_output,
            connect_timeout=connect_timeout,
        ) as client:
            yield DaggerEngine(client, ca_bundle=ca_bundle, missing_platforms=missing_platforms)

    session = DaggerSession(connect, parent=parent, traceparent=traceparent)
    try:
        yield session
    finally:
        await session.aclose()


@asynccontextmanager
async def _connection(
    *,
    traceparent: str | None,
    cli: Path | None,
    log_output: TextIO | None,
    connect_timeout: float,
) -> AsyncIterator[dagger.Client]:
    """A connected dagger-io client, ``dagger session`` started with ``traceparent``."""
    config = dagger.Config(
        log_output=log_output, timeout=dagger.Timeout(None, connect=connect_timeout)
    )
    connection = dagger.Connection(config)
    env = {
        "TRACEPARENT": traceparent,
        "_EXPERIMENTAL_DAGGER_CLI_BIN": str(cli) if cli is not None else None,
    }
    with _process_env(env):
        try:
            client = await connection.__aenter__()
        except dagger.DaggerError as exc:
            await connection.close()  # type: ignore[no-untyped-call]
            raise map_dagger_error(exc) from exc
        except OSError as exc:
            await connection.close()  # type: ignore[no-untyped-call]
            raise map_dagger_error(dagger.ProvisionError(str(exc))) from exc
    try:
        yield client
    finally:
        await connection.close()  # type: ignore[no-untyped-call]
