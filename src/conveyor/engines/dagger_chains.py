"""Dagger chains: the lazy dagger-io objects behind each engine operation.

Every function here only *describes* work: it chains dagger-io calls, which
append fields to a query and send nothing.  :class:`~conveyor.engines.dagger.DaggerEngine`
awaits the result.  Keeping the two apart lets the chains be rendered to
GraphQL and checked against the engine's schema without an engine.

Secrets always travel as ``Secret`` objects made by ``set_secret`` (the one
place their plaintext is sent, by design) and reach a process through
``with_secret_variable`` or a Dockerfile secret mount, never as an
environment variable, an exec argument or a label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import dagger

from conveyor.engines.podman_build import CONTEXT_EXCLUDE
from conveyor.engines.port import BuildSpec, RegistryAuth, RunSpec, ServiceBinding, ServiceSpec
from conveyor.secrets import Secret

CA_BUNDLE_PATH = "/etc/ssl/certs/ca-certificates.crt"
"""Where a configured CA bundle is mounted in run containers (Debian layout)."""

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".venv",
    "**/__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
)
"""Host paths never uploaded to the engine: local caches, not sources."""


class Sources:
    """Turns local paths into Dagger directories.

    Outside a module the host's files are uploaded with ``host().directory``.
    Inside a Dagger module the sources already are a ``dagger.Directory``
    (a function argument) that was also exported to a local path so the core
    can read its configuration; ``known`` maps that path back to the
    directory, so the engine reuses it instead of uploading a copy.  Files the
    core writes during the call (the image tarball the scanner reads) live in
    the module's scratch working directory, which the runtime has no host
    access to: below ``module_workdir`` they are loaded with
    ``currentModule.workdir``.

    Args:
        client: The dagger-io client.
        known: Directories already in the engine, by the local path they were
            exported to.
        exclude: Patterns left out when a host directory is uploaded.
        module_workdir: The module's scratch working directory as the runtime
            sees it (its current directory); ``None`` outside a module.
    """

    def __init__(
        self,
        client: dagger.Client,
        known: Mapping[Path, dagger.Directory] | None = None,
        exclude: Sequence[str] = DEFAULT_EXCLUDE,
        module_workdir: Path | None = None,
    ) -> None:
        self._client = client
        self._known = {path.resolve(): directory for path, directory in (known or {}).items()}
        self._exclude = list(exclude)
        self._module_workdir = module_workdir.resolve() if module_workdir else None

    def directory(self, path: Path, exclude: Sequence[str] = ()) -> dagger.Directory:
        """The Dagger directory holding the local directory ``path``.

        ``exclude`` is left out too: on upload when the directory is uploaded,
        else by filtering the directory the engine already has.
        """
        path = path.resolve()
        for root, directory in self._known.items():
            if path == root:
                return _without(directory, exclude)
            if path.is_relative_to(root):
                return _without(directory.directory(path.relative_to(root).as_posix()), exclude)
        patterns = [*self._exclude, *exclude]
        inside = self._in_module_workdir(path)
        if inside is not None:
            return self._client.current_module().workdir(inside, exclude=patterns)
        return self._client.host().directory(str(path), exclude=patterns)

    def file(self, path: Path) -> dagger.File:
        """The Dagger file holding the local file ``path``."""
        path = path.resolve()
        for root, directory in self._known.items():
            if path.is_relative_to(root):
                return directory.file(path.relative_to(root).as_posix())
        inside = self._in_module_workdir(path)
        if inside is not None:
            return self._client.current_module().workdir_file(inside)
        return self._client.host().file(str(path))

    def _in_module_workdir(self, path: Path) -> str | None:
        """``path`` relative to the module's working directory, if it is below it."""
        root = self._module_workdir
        if root is None or not path.is_relative_to(root):
            return None
        return path.relative_to(root).as_posix()


def _without(directory: dagger.Directory, exclude: Sequence[str]) -> dagger.Directory:
    return directory.filter(exclude=list(exclude)) if exclude else directory


def secret(client: dagger.Client, value: Secret) -> dagger.Secret:
    """A Dagger secret carrying ``value``; its plaintext travels only in ``setSecret``."""
    return client.set_secret(value.name, value.reveal())


def run_container(
    client: dagger.Client,
    spec: RunSpec,
    sources: Sources,
    services: Mapping[str, dagger.Service] | None = None,
) -> dagger.Container:
    """The container that runs ``spec.command`` and keeps any exit code.

    ``expect=ANY`` makes a non-zero exit a value of the container (``exitCode``,
    ``stdout``, ``stderr``) rather than a failed query, as the port requires.
    ``services`` (by the host name the command reaches each by) are bound to it.
    """
    ctr = client.container().from_(spec.image)
    for alias, svc in (services or {}).items():
        ctr = ctr.with_service_binding(alias, svc)
    if spec.ca_bundle is not None:
        ctr = ctr.with_mounted_file(CA_BUNDLE_PATH, sources.file(spec.ca_bundle))
    ctr = ctr.with_mounted_directory(spec.workdir, sources.directory(spec.source)).with_workdir(
        spec.workdir
    )
    for cache in spec.caches:
        ctr = ctr.with_mounted_cache(cache.path, client.cache_volume(cache.name))
    for name, value in spec.env.items():
        ctr = ctr.with_env_variable(name, value)
    for item in spec.secrets:
        ctr = ctr.with_secret_variable(item.name, secret(client, item))
    return ctr.with_exec(list(spec.command), expect=dagger.ReturnType.ANY)


def output_path(spec: RunSpec, output: str) -> str:
    """The absolute path in the run container of ``output`` (relative to the workdir)."""
    return str(PurePosixPath(spec.workdir) / output)


def build_variants(
    client: dagger.Client, spec: BuildSpec, sources: Sources
) -> list[dagger.Container]:
    """One built container per platform (one for the engine's platform when none is asked).

    The context never holds the run store (``.conveyor/``).  The commit time
    reaches BuildKit as the ``SOURCE_DATE_EPOCH`` build argument, which it
    reads for the image's creation time.
    """
    context = sources.directory(spec.context, exclude=CONTEXT_EXCLUDE)
    args = dict(spec.build_args)
    if spec.timestamp is not None:
        args.setdefault("SOURCE_DATE_EPOCH", str(spec.timestamp))
    build_args = [dagger.BuildArg(name=name, value=value) for name, value in args.items()]
    secrets = [secret(client, value) for value in spec.secrets]
    platforms: Sequence[str | None] = list(spec.platforms) or [None]
    variants = []
    for platform in platforms:
        ctr = context.docker_build(
            dockerfile=spec.dockerfile,
            platform=dagger.Platform(platform) if platform else None,
            build_args=build_args or None,
            target=spec.target or "",
            secrets=secrets or None,
        )
        for name, value in spec.labels.items():
            ctr = ctr.with_label(name, value)
        variants.append(ctr)
    return variants


def tarball(client: dagger.Client, variants: Sequence[dagger.Container]) -> dagger.File:
    """The OCI archive of the image; a multi-platform index when there are several variants."""
    if len(variants) == 1:
        return variants[0].as_tarball()
    return client.container().as_tarball(platform_variants=list(variants))


def publisher(
    client: dagger.Client,
    variants: Sequence[dagger.Container],
    address: str,
    auth: RegistryAuth | None,
) -> tuple[dagger.Container, list[dagger.Container]]:
    """The container to call ``publish`` on and its platform variants.

    One variant is published as itself; several become an index published from
    an empty container, as dagger-io documents for multi-platform images.
    """
    if len(variants) == 1:
        base, platform_variants = variants[0], []
    else:
        base, platform_variants = client.container(), list(variants)
    return with_auth(client, base, address, auth), platform_variants


def with_auth(
    client: dagger.Client, ctr: dagger.Container, address: str, auth: RegistryAuth | None
) -> dagger.Container:
    """``ctr`` with ``auth`` attached for ``address``'s registry (none without ``auth``).

    ``withRegistryAuth`` hands the credentials to the engine's registry
    authentication for the session, which serves pulls (``from``) and pushes.
    """
    if auth is None:
        return ctr
    return ctr.with_registry_auth(address, auth.username, secret(client, auth.password))


def remote_image(
    client: dagger.Client, address: str, auth: RegistryAuth | None
) -> dagger.Container:
    """``address`` resolved by the engine: ``from`` reads the registry, nothing is pulled.

    The engine's resolver does it, with the engine's network, its registry
    configuration (mirrors, plain HTTP, CAs) and the session's credentials, as
    the push will.  ``imageRef`` is then ``address@<digest>`` (the index
    digest of a multi-platform image) and ``label``/``platform`` read the
    image config of the container's platform.
    """
    return with_auth(client, client.container(), address, auth).from_(address)


def platform_image(
    client: dagger.Client, reference: str, platform: str, auth: RegistryAuth | None
) -> dagger.Container:
    """``reference`` resolved for ``platform``; its ``platform`` is the config's real one.

    From an index the engine picks the manifest of ``platform`` (failing
    when there is none); a single manifest is taken whatever it holds, and
    ``Container.platform`` then says which platform its config is for.
    """
    start = client.container(platform=dagger.Platform(platform))
    return with_auth(client, start, reference, auth).from_(reference)


def service(variant: dagger.Container, spec: ServiceSpec) -> dagger.Service:
    """The image run as a service with its entrypoint, exposing ``spec.port``."""
    ctr = variant
    for name, value in spec.env.items():
        ctr = ctr.with_env_variable(name, value)
    return ctr.with_exposed_port(spec.port).as_service(use_entrypoint=True)


def bound_service(
    client: dagger.Client, binding: ServiceBinding, built: dagger.Container | None = None
) -> dagger.Service:
    """The service of a run: its image and env, ``port`` exposed (the engine waits for it).

    ``built`` is the container of an image this run built (``binding.built``),
    run as it is instead of pulling ``binding.image``.  ``binding.command``
    replaces the image's default command; the entrypoint is kept
    (``useEntrypoint``), as podman runs the service.
    """
    ctr = built if built is not None else client.container().from_(binding.image)
    for name, value in binding.env.items():
        ctr = ctr.with_env_variable(name, value)
    return ctr.with_exposed_port(binding.port).as_service(
        args=list(binding.command) or None, use_entrypoint=True
    )


def host_tunnel(client: dagger.Client, svc: dagger.Service) -> dagger.Service:
    """A tunnel that makes ``svc`` reachable from the host on a random local port."""
    return client.host().tunnel(svc)
