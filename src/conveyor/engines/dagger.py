"""``DaggerEngine``: the engine port on dagger-io.

Each operation builds its lazy chain in :mod:`conveyor.engines.dagger_chains`
and awaits it here; dagger-io's exceptions become Conveyor's in
:mod:`conveyor.engines.dagger_errors`.  :func:`open_dagger_engine` owns the
connection for a run started outside Dagger; a Dagger module builds the
engine from ``dag`` instead.

Images built by this engine live in the engine: a :class:`BuiltImage` names
them by the ID of their (first) container, and the engine keeps the lazy
containers of every platform variant for export, publish and service.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Literal, TextIO, TypeVar

import dagger

from conveyor.engines import dagger_chains as chains
from conveyor.engines.dagger_errors import map_dagger_error
from conveyor.engines.dagger_registry import inspect_manifest
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
from conveyor.errors import EngineError, PolicyError
from conveyor.policy.reference import parse
from conveyor.secrets import Redactor, Secret

T = TypeVar("T")

ServiceAccess = Literal["tunnel", "direct"]
"""How the caller reaches a service: through a host tunnel, or directly (module runtime)."""

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
        ca_bundle: Extra CA certificates for the registry lookups of ``inspect_remote``.
        exclude: Patterns left out when host directories are uploaded.
        module_workdir: Inside a module, its scratch working directory (the
            runtime's current directory): local paths below it that are not
            ``known_sources`` (files the core wrote, such as the image tarball
            a Trivy container scans) are loaded with ``currentModule.workdir``,
            since a module has no host to upload them from.
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
    ) -> None:
        self.client = client
        self.sources = chains.Sources(client, known_sources, exclude, module_workdir)
        self.service_access = service_access
        self.ca_bundle = ca_bundle
        self._images: dict[str, list[dagger.Container]] = {}
        self._redact = Redactor()

    async def _await(self, work: Awaitable[T], secrets: Sequence[Secret] = ()) -> T:
        for value in secrets:
            self._redact.add(value)
        try:
            return await work
        except dagger.DaggerError as exc:
            raise map_dagger_error(exc, self._redact) from exc

    async def run(self, spec: RunSpec) -> RunResult:
        """Run ``spec.command``; its exit code is returned, not raised."""
        for value in spec.secrets:
            self._redact.add(value)
        ctr = chains.run_container(self.client, spec, self.sources)
        try:
            ctr = await ctr.sync()
            exit_code = await ctr.exit_code()
            stdout = await ctr.stdout()
            stderr = await ctr.stderr()
        except dagger.ExecError as exc:
            # Exit codes outside ANY (killed by a signal) still are results.
            return RunResult(exc.exit_code, self._redact(exc.stdout), self._redact(exc.stderr))
        except dagger.DaggerError as exc:
            raise map_dagger_error(exc, self._redact) from exc
        exported = await self._export_outputs(ctr, spec)
        return RunResult(exit_code, self._redact(stdout), self._redact(stderr), exported)

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
        local_ref = spec.tag or f"dagger-image-{len(self._images)}"
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
        """Ask the registry's HTTP API (see :mod:`conveyor.engines.dagger_registry`)."""
        return await inspect_manifest(
            address, insecure=insecure, auth=auth, ca_bundle=self.ca_bundle
        )

    async def publish(
        self,
        image: BuiltImage,
        address: str,
        *,
        insecure: bool = False,
        auth: RegistryAuth | None = None,
    ) -> str:
        """Push ``image`` to ``address`` (tagged with the git SHA); return ``address@sha256:...``.

        ``insecure`` registries are the engine's configuration in Dagger
        (``engine.toml``), not a per-push option; a refused push says so.
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
        try:
            published = await self._await(
                base.publish(address, platform_variants=variants or None), secrets
            )
        except EngineError as exc:
            if insecure:
                exc.hint = (
                    f"Dagger pushes to {ref.registry} only if the engine allows plain HTTP "
                    f'for it: add [registries."{ref.registry}"] http = true to engine.toml, '
                    "or run with --engine podman"
                )
            raise
        if not _PUBLISHED.fullmatch(published):
            raise EngineError(f"the Dagger engine published {address} but returned {published!r}")
        return published

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


@asynccontextmanager
async def open_dagger_engine(
    *,
    traceparent: str | None = None,
    cli: Path | None = None,
    log_output: TextIO | None = None,
    ca_bundle: Path | None = None,
    connect_timeout: float = 60.0,
) -> AsyncIterator[DaggerEngine]:
    """Connect to a Dagger engine for the length of a run.

    Inside ``dagger run`` the existing session is reused.  Otherwise dagger-io
    starts ``dagger session`` with ``cli`` (the CLI the engine selection
    found) or with the CLI it downloads for its own version.

    Args:
        traceparent: The run's W3C trace context; passed to the session as
            ``TRACEPARENT`` so Dagger's spans join the run's trace (queries
            also carry the current span in their headers).
        cli: Path of the ``dagger`` CLI to start the session with.
        log_output: Where the engine's progress is written (stderr by default: none).
        ca_bundle: Extra CA certificates for registry lookups.
        connect_timeout: Seconds to wait for the session to answer.

    Raises:
        EngineUnavailableError: no engine could be started or reached.
    """
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
        yield DaggerEngine(client, ca_bundle=ca_bundle)
    finally:
        await connection.close()  # type: ignore[no-untyped-call]
