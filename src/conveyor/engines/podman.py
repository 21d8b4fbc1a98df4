"""``PodmanEngine``: the engine port on podman and skopeo, daemonless.

For runners that forbid the privileged container Dagger's engine needs, for
air-gapped sites, and for this project's own end-to-end tests.  Every
operation is one or two podman/skopeo processes started through
:func:`conveyor.process.run_process`, so a secret is passed by name
(``-e NAME``, ``--secret id=NAME,env=NAME``) with its value only in the
environment of the podman process, never in a command line.  What a tag
holds is asked of the registry's HTTP API (:mod:`conveyor.registry`), not
read from a tool's error text.

How :meth:`PodmanEngine.run` keeps the checkout clean and the reports: the
source is mounted as an overlay (``:O``) whose upper layer is a scratch
directory on the host, so whatever the command writes lands there and the
source tree is untouched; the ``outputs`` are then copied from that layer to
``export_dir`` whether the command passed or failed.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio
from anyio.abc import TaskGroup

from conveyor.engines.authfile import authfile
from conveyor.engines.podman_args import (
    SESSION_LABEL,
    ca_args,
    cache_args,
    env_args,
    flag_value,
    label_args,
    pairs,
)
from conveyor.engines.podman_build import IGNORE_FILES, ignore_file, keyed_dockerfile
from conveyor.engines.podman_check import EngineCheck, check_tools
from conveyor.engines.podman_outputs import export_outputs
from conveyor.engines.podman_services import DEFAULT_SERVICE_TIMEOUT, PodmanServices
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
from conveyor.errors import (
    CommandFailedError,
    EngineError,
    EngineUnavailableError,
    PolicyError,
    RegistryAnswerError,
    RegistryAuthError,
    TagRaceError,
    UnreachableError,
)
from conveyor.process import ProcessResult, run_process
from conveyor.registry import DEFAULT_TIMEOUT
from conveyor.secrets import Redactor, Secret

if TYPE_CHECKING:
    # httpx, which the client needs, is imported by the first registry request, not
    # before the first stage starts
    from conveyor.registry.client import RegistryClient

INSTALL_HINTS = {
    "podman": "install podman ('apt-get install podman', or run scripts/setup.sh)",
    "skopeo": "install skopeo ('apt-get install skopeo', or run scripts/setup.sh)",
    "buildah": "install buildah ('apt-get install buildah', or run scripts/setup.sh)",
}
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "gave http response to https client",
    "certificate",
    "tls:",
)
# How podman reports a failed push: its own phrases, which no address (lowercase
# repository, hex tag) can contain, never a bare number or "not found".
_PUSH_STATUS = re.compile(r"received unexpected HTTP status: (\d{3})")
_PUSH_REFUSED = ("unauthorized:", "denied:", "authentication required")
_PUSH_TRANSPORT = ("EOF", "connection reset", "broken pipe", "Client.Timeout", "i/o timeout")
ArchiveFormat = Literal["docker-archive", "oci-archive"]
LOCALHOST = "127.0.0.1"
PORT_ATTEMPTS = 5
"""Starts of a service on a free port before giving up (each refused start: the port was taken)."""
_REMOVAL_FAILED = "emoving container"
"""What podman logs when ``--rm`` could not remove the container after it ran."""
CLEANUP_TIMEOUT = 60.0
"""Seconds one removal of containers (and a network) may take before it is left to the sweep."""


class PodmanEngine:
    """The engine port implemented with podman (run, build, push) and skopeo.

    Args:
        podman: The podman executable (name on ``PATH`` or a path).
        skopeo: The skopeo executable.
        environ: The environment podman and skopeo run in (``os.environ`` when
            ``None``); its ``PATH`` is where they are looked up.
        redactor: Knows extra secret values to mask in output and errors;
            every secret handed to the engine is added to it.
        archive_format: What :meth:`export_tarball` writes.
        layer_cache: Reuse cached build layers.  Buildah's cache ignores a
            changed build argument that only an ``ENV`` or ``LABEL`` uses
            (containers/buildah#5501); the build therefore keys the layers
            after each ``ARG`` by the arguments' values
            (:func:`~conveyor.engines.podman_build.keyed_dockerfile`).
            ``False`` builds every layer afresh (``--no-cache``).
        registry_timeout: Seconds a registry request may wait for a connect
            or an answer before the registry counts as unreachable.
        registry_ca: A CA bundle (PEM) the registry's HTTPS certificate may
            chain to, besides the system's and ``certs.d``'s.
        service_timeout: Seconds a run's service may take from its start until
            its port accepts connections.
    """

    name = "podman"

    def __init__(
        self,
        *,
        podman: str = "podman",
        skopeo: str = "skopeo",
        environ: Mapping[str, str] | None = None,
        redactor: Redactor | None = None,
        archive_format: ArchiveFormat = "docker-archive",
        layer_cache: bool = True,
        registry_timeout: float = DEFAULT_TIMEOUT,
        registry_ca: Path | None = None,
        service_timeout: float = DEFAULT_SERVICE_TIMEOUT,
    ) -> None:
        self._podman = podman
        self._skopeo = skopeo
        self._environ = environ
        self._redactor = redactor or Redactor()
        self._archive_format = archive_format
        self._layer_cache = layer_cache
        self._registry_timeout = registry_timeout
        self.session = uuid.uuid4().hex
        self._registry_ca = registry_ca
        self._background: TaskGroup | None = None
        # containers and networks made whose removal no exit code has confirmed yet
        self._unconfirmed: set[str] = set()
        self._in_doubt = False
        self._services = PodmanServices(
            self._exec, podman, self.session, self._dispose, service_timeout
        )

    async def _exec(
        self,
        argv: Sequence[str],
        *,
        secrets: Sequence[Secret] = (),
        check: bool = True,
        failure_hint: str | None = None,
        tmpdir: Path | None = None,
    ) -> ProcessResult:
        tool = "skopeo" if argv[0] == self._skopeo else "podman"
        environ = self._environ
        if tmpdir is not None:  # its temporary files go where this run removes them
            environ = {**(os.environ if environ is None else environ), "TMPDIR": str(tmpdir)}
        try:
            return await run_process(
                argv,
                environ=environ,
                secrets=secrets,
                check=check,
                redactor=self._redactor,
                install_hint=INSTALL_HINTS[tool],
                failure_hint=failure_hint,
            )
        except BaseException:
            # a podman killed half-way (a cancel) may still make what it was asked to
            self._in_doubt = True
            raise

    # -- run ---------------------------------------------------------------------

    async def run(self, spec: RunSpec) -> RunResult:
        """Run ``spec.command`` in ``spec.image`` with the source mounted at ``spec.workdir``.

        A non-zero exit is returned in the result.  ``spec.outputs`` are
        copied to ``spec.export_dir`` either way; missing ones are left out
        of ``RunResult.exported``.  ``spec.services`` run on a network of the
        run's own, reachable by their names, ready before the command starts
        and removed after it, however it ends
        (:mod:`~conveyor.engines.podman_services`).

        Raises:
            EngineError: the source, CA bundle or a cache name is invalid, or
                outputs were asked for without an export directory.
            ServiceStartError: a service did not start or never opened its port.
            ToolMissingError: podman is not installed.
        """
        source = _existing_dir(spec.source, "source directory")
        if spec.outputs and spec.export_dir is None:
            raise EngineError(
                f"outputs {list(spec.outputs)} were requested without an export directory",
                hint="set RunSpec.export_dir",
            )
        for secret in spec.secrets:
            self._redactor.add(secret)  # a service's log lines may print one too
        async with self._services.network(spec.services) as network_args:
            return await self._run_container(spec, source, network_args)

    async def _run_container(
        self, spec: RunSpec, source: Path, network_args: Sequence[str]
    ) -> RunResult:
        name = f"conveyor-run-{uuid.uuid4().hex[:12]}"
        with tempfile.TemporaryDirectory(prefix="conveyor-run-") as scratch:
            upper, work = Path(scratch) / "upper", Path(scratch) / "work"
            upper.mkdir()
            work.mkdir()
            argv = [
                self._podman, "run", "--rm", "--name", name, *label_args("run", self.session),
                "--pull=missing",
                # The command is the whole argv, as with Dagger's with_exec.
                "--entrypoint", "",
                "-v", f"{source}:{spec.workdir}:O,upperdir={upper},workdir={work}",
                "-w", spec.workdir,
                *network_args,
                *env_args(spec.env, spec.secrets),
                *cache_args(spec.caches),
                *ca_args(spec.ca_bundle),
                spec.image, *spec.command,
            ]  # fmt: skip
            self._unconfirmed.add(name)
            try:
                result = await self._exec(argv, secrets=spec.secrets, check=False)
            except anyio.get_cancelled_exc_class():
                # Killing the podman client leaves the container running.
                await self._remove([name])
                raise
            if not _is_engine_failure(result) and _REMOVAL_FAILED not in result.stderr:
                self._unconfirmed.discard(name)  # it ran, and --rm removed it
            if _is_engine_failure(result):
                raise CommandFailedError(
                    result.command,
                    result.exit_code,
                    result.stderr,
                    hint="podman could not start the container; see 'conveyor doctor'",
                )
            exported = {}
            if spec.export_dir is not None:
                exported = await anyio.to_thread.run_sync(
                    export_outputs, spec.outputs, upper, source, spec.export_dir
                )
        return RunResult(
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            exported=exported,
        )

    # -- build -------------------------------------------------------------------

    async def build(self, spec: BuildSpec) -> BuiltImage:
        """Build ``spec.context`` with ``podman build``.

        Base images already in local storage (``localhost/...``) are used
        without a pull.  Secrets reach ``RUN --mount=type=secret,id=NAME``.
        The context's ``.containerignore`` (or ``.dockerignore``) applies,
        and ``.conveyor/`` is always left out.  Cached layers are reused
        where the build arguments they follow are unchanged (see
        ``layer_cache``); ``spec.timestamp`` makes the image reproducible.

        Raises:
            CommandFailedError: the build failed; carries the log's tail.
            EngineUnavailableError: more than one platform was asked for.
            EngineError: the context or the Dockerfile does not exist.
        """
        context = _existing_dir(spec.context, "build context")
        dockerfile = context / spec.dockerfile
        if not dockerfile.is_file():
            raise EngineError(
                f"Dockerfile {dockerfile} does not exist",
                hint="check app.dockerfile (relative to app.context)",
            )
        if len(spec.platforms) > 1:
            raise EngineUnavailableError(
                "podman",
                f"multi-platform builds ({', '.join(spec.platforms)}) are not supported",
                hint="build one platform with podman, or use the Dagger engine",
            )
        try:
            written = await anyio.Path(dockerfile).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise EngineError(
                f"Dockerfile {dockerfile} is not UTF-8 text ({exc.reason})",
                hint="save it as UTF-8",
            ) from None
        keyed = keyed_dockerfile(written, spec.build_args)
        # buildah's own temporary directories go into scratch too: a build killed by a
        # cancel or a signal leaves nothing behind in /var/tmp
        with tempfile.TemporaryDirectory(
            prefix="conveyor-build-", ignore_cleanup_errors=True
        ) as scratch:
            iidfile = Path(scratch) / "iid"
            ignorefile = Path(scratch) / "ignore"
            ignorefile.write_text(ignore_file(_context_ignore(context)), encoding="utf-8")
            built_from = Path(scratch) / "Dockerfile"
            built_from.write_text(keyed.text, encoding="utf-8")
            argv = [
                self._podman, "build", "--pull=missing", "--iidfile", str(iidfile),
                *_cache_args(self._layer_cache, keyed.reusable),
                *(["--timestamp", str(spec.timestamp)] if spec.timestamp is not None else []),
                "--ignorefile", str(ignorefile),
                "-f", str(built_from),
                *pairs("--build-arg", spec.build_args),
                *pairs("--label", spec.labels),
                *(["--target", spec.target] if spec.target else []),
                *(["--platform", spec.platforms[0]] if spec.platforms else []),
                *[arg for s in spec.secrets for arg in ("--secret", f"id={s.name},env={s.name}")],
                *ca_args(spec.ca_bundle, build=True),
                *(["-t", spec.tag] if spec.tag else []),
                str(context),
            ]  # fmt: skip
            result = await self._exec(argv, secrets=spec.secrets, check=False, tmpdir=Path(scratch))
            if not result.ok:
                raise CommandFailedError(
                    result.command,
                    result.exit_code,
                    f"{result.stdout}\n{result.stderr}",
                    hint=f"fix {dockerfile.name} or the build context; the lines above end the log",
                )
            image_id = iidfile.read_text().strip()
        return BuiltImage(
            id=image_id,
            local_ref=spec.tag or image_id.removeprefix("sha256:"),
            platforms=tuple(spec.platforms),
        )

    # -- export ------------------------------------------------------------------

    async def export_tarball(self, image: BuiltImage, dest: Path) -> Path:
        """Write ``image`` to ``dest`` with ``podman save`` (docker- or OCI-archive).

        Raises:
            CommandFailedError: podman could not save the image.
        """
        await anyio.to_thread.run_sync(_clear_destination, dest)
        try:
            await self._exec(
                # by id, not by the local name another pipeline of this commit may re-tag
                [self._podman, "save", "--format", self._archive_format, "-o", str(dest),
                 image.id],
            )  # fmt: skip
        except BaseException:
            # a failed or cancelled save leaves no partial archive behind
            with anyio.CancelScope(shield=True):
                await anyio.Path(dest).unlink(missing_ok=True)
            raise
        return dest

    # -- registry ----------------------------------------------------------------

    async def inspect_remote(
        self, address: str, *, insecure: bool = False, auth: RegistryAuth | None = None
    ) -> RemoteImage | None:
        """The image at ``address``, asked of the registry's HTTP API directly.

        Whether the tag exists is decided by the registry's answer alone
        (:mod:`conveyor.registry.answer`): only "manifest unknown" is absent.
        Its ``Digest`` is that of the manifest the tag points at (the index of
        a multi-platform image), its labels those of the image config (this
        machine's platform of an index), as ``skopeo inspect`` reports them.

        Returns:
            The digest and labels, or ``None`` when the tag or repository is absent.

        Raises:
            UnreachableError: no answer, a dropped connection, a timeout, 5xx.
            RegistryAuthError: the registry refused the credentials (401/403).
            RegistryAnswerError: any other answer: whether the tag exists is unknown.
        """
        client, repository, reference = self._registry(address, insecure, auth)
        return await client.remote_image(repository, reference)

    async def publish(
        self,
        image: BuiltImage,
        address: str,
        *,
        insecure: bool = False,
        auth: RegistryAuth | None = None,
    ) -> str:
        """Push exactly ``image`` (by its id) to ``address``; return ``address@sha256:...``.

        The image id, not a local name another build may re-tag, is what is
        pushed.  The digest is the one the registry stored (``--digestfile``);
        the tag is then read back from the registry, and must hold it.  When
        the push fails (its answer lost with a dropped connection, say), the
        registry is asked before failing: a tag holding this image (its config
        digest is the image id) is a successful push.

        Raises:
            TagRaceError: after the push the tag holds another image: another
                writer pushed to it at the same time.
            UnreachableError: the registry did not answer.
            RegistryAuthError: the registry refused the credentials.
            CommandFailedError: the push failed otherwise.
        """
        from conveyor.registry.client import plain_http  # noqa: PLC0415 - see the imports

        client, repository, reference = self._registry(address, insecure, auth)
        with (
            tempfile.TemporaryDirectory(prefix="conveyor-push-") as scratch,
            authfile(address, auth) as auth_args,
        ):
            digestfile = Path(scratch) / "digest"
            tls = flag_value(not plain_http(client.host, insecure))
            result = await self._exec(
                [self._podman, "push", "--quiet", f"--tls-verify={tls}",
                 "--digestfile", str(digestfile), *auth_args,
                 image.id, f"docker://{address}"],
                secrets=_auth_secrets(auth),
                check=False,
            )  # fmt: skip
            pushed = digestfile.read_text().strip() if digestfile.is_file() else ""
        if not result.ok:
            return await self._after_failed_push(client, image, address, result)
        held = await client.image_manifest(repository, reference)
        if held is None:
            raise RegistryAnswerError(client.host, f"{address} after the push", "the tag is absent")
        if held.digest != pushed:
            raise TagRaceError(address, ours=pushed or "no digest", theirs=held.digest)
        return f"{address}@{pushed}"

    async def _after_failed_push(
        self, client: RegistryClient, image: BuiltImage, address: str, result: ProcessResult
    ) -> str:
        """Success when the registry holds ``image`` under the tag after all; else the error."""
        from conveyor.registry.client import client_for  # noqa: PLC0415 - see the imports

        _, repository, reference = client_for(address)
        held = await client.image_manifest(repository, reference)
        if held is not None and held.config == image.id:
            return f"{address}@{held.digest}"
        status = _PUSH_STATUS.search(result.stderr)
        code = int(status.group(1)) if status else None
        if code in (401, 403) or any(m in result.stderr for m in _PUSH_REFUSED):
            last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
            raise RegistryAuthError(client.host, repository, code or 401, last)
        if (code is not None and (code >= 500 or code in (408, 429))) or any(
            marker in result.stderr for marker in _PUSH_TRANSPORT
        ):
            raise _unreachable(address, result.stderr, False)
        if any(marker in result.stderr.lower() for marker in _UNREACHABLE):
            raise _unreachable(address, result.stderr, False)
        raise CommandFailedError(
            result.command,
            result.exit_code,
            result.stderr,
            hint="check the registry address and credentials",
        )

    def _registry(
        self, address: str, insecure: bool, auth: RegistryAuth | None
    ) -> tuple[RegistryClient, str, str]:
        from conveyor.registry.client import client_for  # noqa: PLC0415 - see the imports

        try:
            return client_for(
                address,
                auth=auth,
                insecure=insecure,
                timeout=self._registry_timeout,
                ca_bundle=self._registry_ca,
            )
        except PolicyError as exc:
            raise EngineError(f"{address} is not an image address: {exc.rule}") from exc

    # -- service -----------------------------------------------------------------

    def service(self, spec: ServiceSpec) -> AbstractAsyncContextManager[Endpoint]:
        """Run ``spec.image`` detached with ``spec.port`` published on 127.0.0.1.

        The endpoint is yielded at once; callers probe it until it answers.
        The container is removed when the context ends, however it ends.
        """
        return self._service(spec)

    @asynccontextmanager
    async def _service(self, spec: ServiceSpec) -> AsyncIterator[Endpoint]:
        names: list[str] = []  # each start's own name: a refused start leaves a created container
        try:
            for attempt in range(1, PORT_ATTEMPTS + 1):
                name = f"conveyor-svc-{uuid.uuid4().hex[:12]}"
                names.append(name)
                # the host port is chosen here, not by podman: no 'podman port' to ask after
                host_port = free_local_port()
                argv = [
                    self._podman, "run", "-d", "--name", name,
                    *label_args("service", self.session),
                    "--pull=missing", "-p", f"{LOCALHOST}:{host_port}:{spec.port}",
                    *env_args(spec.env, ()),
                    # by id: the local name is mutable (another pipeline of this commit re-tags it)
                    spec.image.id,
                ]  # fmt: skip
                started = await self._exec(argv, check=False)
                if started.ok:
                    break
                if not _port_taken(started.stderr) or attempt == PORT_ATTEMPTS:
                    raise CommandFailedError(
                        started.command,
                        started.exit_code,
                        started.stderr,
                        hint="the service image could not be started",
                    )
                # another process bound the port since it was free: another one, another name
            yield Endpoint(host=LOCALHOST, port=host_port)
        finally:
            await self._dispose(names)

    # -- removal -----------------------------------------------------------------

    @asynccontextmanager
    async def removing_in_background(self) -> AsyncIterator[None]:
        """While open, services and their networks are removed beside the next stages.

        A stage with a service (smoke, a stage with ``services``) then ends at
        its verdict, not after ``podman rm``: the removal starts at once and
        runs while the stages after it do.  When the context ends, however it
        ends (an error, a cancel, a signal), it waits for every removal, each
        shielded from cancellation and bounded by :data:`CLEANUP_TIMEOUT`;
        :meth:`remove_leftovers` then sweeps what one could not remove.
        Outside this context a removal is done before the service's context
        ends.
        """
        try:
            async with anyio.create_task_group() as group:
                self._background = group
                try:
                    yield
                finally:
                    self._background = None
        except BaseExceptionGroup as failed:
            # a removal never raises: what the group holds is the body's own error
            if len(failed.exceptions) != 1:
                raise
            error = failed.exceptions[0]
            raise error from error.__cause__

    async def _dispose(self, containers: Sequence[str], network: str | None = None) -> None:
        """Remove ``containers``, then ``network``: in the background while it is open, else now."""
        self._unconfirmed.update([*containers, *([network] if network is not None else [])])
        if self._background is not None:
            self._background.start_soon(self._remove, tuple(containers), network)
        else:
            await self._remove(containers, network)

    async def _remove(self, containers: Sequence[str], network: str | None = None) -> None:
        """Remove ``containers`` at once (forced), then ``network``; never raises.

        Disposable: killed at once.  An app running as PID 1 gets no default
        SIGTERM handler, so a grace period would only ever be waited out.
        Whatever cannot be removed is left to :meth:`remove_leftovers`.
        """
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
            try:
                if containers:
                    removed = await self._exec(
                        [self._podman, "rm", "-f", "-i", "-t", "0", "--", *containers],
                        check=False,
                    )
                    if removed.ok:
                        self._unconfirmed.difference_update(containers)
                if network is not None:
                    removed = await self._exec(
                        [self._podman, "network", "rm", "-f", network], check=False
                    )
                    if removed.ok:
                        self._unconfirmed.discard(network)
            except Exception:  # noqa: BLE001, S110 - the sweep removes what is left
                pass

    @property
    def may_have_leftovers(self) -> bool:
        """Whether a container or network this engine made may still be there.

        False once the removal of each one it made was confirmed by an exit
        code of 0: ``podman rm -f -i``, ``podman network rm -f``, or the end of
        a ``podman run --rm`` whose container ran (podman removes it before it
        exits, and says so on stderr when it cannot).  Anything in doubt (a
        podman process cancelled or failed half-way, a start podman refused,
        a removal that failed or timed out) keeps it true: then
        :meth:`remove_leftovers` sweeps.
        """
        return self._in_doubt or bool(self._unconfirmed)

    async def remove_leftovers(self) -> list[str]:
        """Remove every container and network of this engine still there; their names.

        Each operation removes what it made however it ends; this is the
        sweep after a run, for what an interrupted removal left.  Containers
        go first: a network is removed once nothing is attached to it.
        """
        label = f"label={SESSION_LABEL}={self.session}"
        listings = {
            "containers": [self._podman, "ps", "-a", "--filter", label, "--format", "{{.Names}}"],
            "networks": [self._podman, "network", "ls", "--filter", label, "--format", "{{.Name}}"],
        }
        found: dict[str, list[str]] = {}

        async def list_them(kind: str) -> None:
            listed = await self._exec(listings[kind], check=False)
            found[kind] = listed.stdout.split() if listed.ok else []

        async with anyio.create_task_group() as group:  # both asked at once: the run's last wait
            for kind in listings:
                group.start_soon(list_them, kind)
        names, networks = found["containers"], found["networks"]
        if names:
            await self._exec([self._podman, "rm", "-f", "-t", "0", "--", *names], check=False)
        if networks:
            await self._exec([self._podman, "network", "rm", "-f", *networks], check=False)
        return names + networks

    # -- doctor ------------------------------------------------------------------

    async def check(self, image: str = "localhost/conveyor/python:3.11") -> EngineCheck:
        """Which tools are installed (with versions) and whether ``image`` can run.

        Never raises for a missing tool: that is what it reports.
        """
        return await check_tools(
            podman=self._podman, skopeo=self._skopeo, image=image, environ=self._environ
        )


def _existing_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise EngineError(f"{what} {path} does not exist or is not a directory")
    return path.resolve()


def _is_engine_failure(result: ProcessResult) -> bool:
    """Exit codes 125-127 with podman's own "Error:" mean the container never ran."""
    return result.exit_code in (125, 126, 127) and "Error:" in result.stderr


def _context_ignore(context: Path) -> str | None:
    """The text of the context's own ignore file, the one podman would read."""
    for name in IGNORE_FILES:
        path = context / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def _cache_args(layer_cache: bool, reusable: bool) -> list[str]:
    if not reusable:
        # Nothing cacheable before the build arguments: one commit, no layer per step.
        return ["--layers=false"]
    # The same layers either way, so that the image does not depend on the setting.
    return [] if layer_cache else ["--no-cache"]


def _clear_destination(dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)  # podman save refuses to overwrite an archive


def _auth_secrets(auth: RegistryAuth | None) -> tuple[Secret, ...]:
    # Passed only so that output mentioning the password is redacted.
    return () if auth is None else (auth.password,)


def _unreachable(address: str, stderr: str, insecure: bool) -> UnreachableError:
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no answer"
    hint = "check that the registry runs and the address is right"
    if "http response to https client" in stderr.lower() and not insecure:
        hint = "the registry speaks plain HTTP: set registry.insecure = true"
    elif "certificate" in stderr.lower():
        hint = "the registry's certificate is not trusted: set run.ca_bundle"
    return UnreachableError("registry", address.split("/", 1)[0], last, hint=hint)


def free_local_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (the kernel's pick for a bind to port 0).

    Another process may take it before podman binds it; podman then refuses
    the start (:func:`_port_taken`) and the service is started on another.
    Once started, the port is podman's: its conmon holds it open.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
    return port


def _port_taken(stderr: str) -> bool:
    """Whether podman refused a start because the host port is in use."""
    return "address already in use" in stderr
