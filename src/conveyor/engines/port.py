"""The engine port: the few container operations the stages need.

Stages speak only to :class:`Engine`.  ``PodmanEngine`` implements it with
podman/buildah/skopeo, ``DaggerEngine`` with dagger-io; neither is imported by
a stage.  Everything crossing the port is a plain frozen value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from conveyor.secrets import Secret


@dataclass(frozen=True)
class CacheMount:
    """A named cache volume mounted at ``path`` (pip, npm, go caches)."""

    name: str
    path: str


@dataclass(frozen=True)
class ServiceBinding:
    """A service started for one :meth:`Engine.run`, reachable from it as ``name``.

    The engine starts it before the command, waits until ``port`` accepts
    connections and removes it afterwards, whatever happened.

    Attributes:
        name: The host name the run's container reaches it by (``db``).
        image: A reference the engine pulls (a pinned registry image) or, on
            podman, a locally built ``localhost/...`` image.
        port: The TCP port it serves on, on every interface of its container.
        env: Its environment (plain values: a secret goes to the run, not here).
        command: Replaces the image's default command; its entrypoint is kept
            (compose's ``command``).  Empty: the image's own command.
        built: The image this run built, when the service runs it (``image``
            is then its id): an engine without a local image store (Dagger)
            starts the built container itself.
    """

    name: str
    image: str
    port: int
    env: Mapping[str, str] = field(default_factory=dict)
    command: Sequence[str] = ()
    built: BuiltImage | None = None

    @property
    def shown_image(self) -> str:
        """The image as messages name it: the built image's local name, else ``image``."""
        return self.built.local_ref if self.built is not None else self.image


@dataclass(frozen=True)
class RunSpec:
    """Run ``command`` in ``image`` with ``source`` mounted at ``workdir``.

    ``command`` is the whole argument vector: the image's entrypoint is not
    applied (Dagger's ``with_exec`` default; Podman clears it), so a command
    for an image whose entrypoint is ``trivy`` starts with ``trivy``.

    ``outputs`` are paths (relative to ``workdir``) copied back into
    ``export_dir`` after the command, whether it succeeded or not, so that
    test reports survive a failing test run.
    """

    image: str
    command: Sequence[str]
    source: Path
    workdir: str = "/src"
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[Secret] = ()
    caches: Sequence[CacheMount] = ()
    outputs: Sequence[str] = ()
    export_dir: Path | None = None
    ca_bundle: Path | None = None
    services: Sequence[ServiceBinding] = ()


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    exported: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildSpec:
    """Build the image of ``context`` with ``dockerfile``.

    ``timestamp`` (seconds since the epoch, ``SOURCE_DATE_EPOCH``: the commit
    time) is the image's creation time and its files' times, so that two
    builds of one commit give one image id; ``None`` leaves the engine's
    wall clock.
    """

    context: Path
    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    platforms: Sequence[str] = ()
    secrets: Sequence[Secret] = ()
    tag: str | None = None
    ca_bundle: Path | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class BuiltImage:
    """An image the engine built and holds locally.

    ``id`` is engine-specific (a podman image id, a Dagger container id);
    ``local_ref`` is a name the engine can address it by.
    """

    id: str
    local_ref: str
    platforms: Sequence[str] = ()


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry.

    Attributes:
        username: The user name (for an identity token, what the login stored).
        password: The password, or the identity (refresh) token.
        identity_token: ``password`` is an OAuth2 refresh token (``identitytoken``
            in a credential file, as ``az acr login`` writes), exchanged at the
            token endpoint instead of being sent as a password.
    """

    username: str
    password: Secret
    identity_token: bool = False


@dataclass(frozen=True)
class RemoteImage:
    """An image already in a registry, as :meth:`Engine.inspect_remote` found it.

    Attributes:
        digest: The manifest digest the tag points at (``sha256:...``; the
            index digest for a multi-platform image).
        labels: The labels of its image config (of the first platform of an
            index); empty when it has none.
    """

    digest: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """Where a service started by :meth:`Engine.service` answers."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ServiceSpec:
    image: BuiltImage
    port: int
    env: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """The container operations a pipeline needs."""

    name: str

    async def run(self, spec: RunSpec) -> RunResult:
        """Run a command; a non-zero exit is a result, not an exception.

        Each of ``spec.services`` is started first, reachable from the
        command's container by its name, and waited for until its port
        accepts connections; a bounded wait: one that never answers raises
        ``ServiceStartError`` (its name, image, port and last log lines).
        The services are removed afterwards, however the run ends (success,
        failure, cancellation, timeout).
        """
        ...

    async def build(self, spec: BuildSpec) -> BuiltImage:
        """Build an image; a failed build raises ``CommandFailedError``."""
        ...

    async def export_tarball(self, image: BuiltImage, dest: Path) -> Path:
        """Write the image as an OCI/docker archive for scanners."""
        ...

    async def inspect_remote(
        self, address: str, *, insecure: bool = False, auth: RegistryAuth | None = None
    ) -> RemoteImage | None:
        """The image at ``address`` (registry/repo:tag) in the registry; ``None`` if absent.

        Raises ``UnreachableError`` when the registry does not answer: an
        unreachable registry is never taken for a missing tag.
        """
        ...

    async def publish(
        self,
        image: BuiltImage,
        address: str,
        *,
        insecure: bool = False,
        auth: RegistryAuth | None = None,
    ) -> str:
        """Push to ``address`` (registry/repo:tag) and return ``address@sha256:...``."""
        ...

    def service(self, spec: ServiceSpec) -> AbstractAsyncContextManager[Endpoint]:
        """Run the image as a service for the duration of the context."""
        ...


@runtime_checkable
class TraceLinked(Protocol):
    """An engine whose sessions are traced in a viewer of its own (Dagger Cloud)."""

    async def trace_url(self) -> str | None:
        """The URL of this run's trace there; ``None`` when there is none.

        Never raises and never waits long: a run does not fail for a link.
        """
        ...
