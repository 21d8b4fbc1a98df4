"""The registry's HTTP API (distribution v2) over httpx: the thin adapter.

What a manifest request means is decided by :mod:`conveyor.registry.answer`;
this module sends the requests, runs the token dance, and translates every
way HTTP can fail into the error tree:

- a transport failure (connection refused, TLS, a timeout, a connection that
  closes before the answer) and a 5xx/408/429 answer are
  :class:`~conveyor.errors.UnreachableError` (exit 7, retryable);
- 401/403 (from the registry or its token endpoint) are
  :class:`~conveyor.errors.RegistryAuthError`;
- any other answer is :class:`~conveyor.errors.RegistryAnswerError`.

Authentication follows the registry's ``WWW-Authenticate`` challenge: a
``Bearer realm=...,service=...,scope=...`` challenge gets a token from the
realm (anonymously, with Basic credentials, or by the OAuth2 refresh-token
grant for an identity token), a ``Basic`` one the credentials themselves.
Loopback registries (``127.0.0.1``, ``localhost``, ``[::1]``) and
``registry.insecure`` ones are spoken to over plain HTTP, as podman (with
``--tls-verify=false``) and Dagger's engine do; every other one over HTTPS
verified against the system's CAs, ``ca_bundle`` and the host's
``certs.d`` CA files (as podman and docker read them).  No header, token
or password ever reaches an error message.
"""

from __future__ import annotations

import functools
import os
import platform
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from conveyor.engines.port import RegistryAuth, RemoteImage
from conveyor.errors import (
    EngineError,
    RegistryAnswerError,
    RegistryAuthError,
    UnreachableError,
)
from conveyor.policy.reference import parse
from conveyor.registry import DEFAULT_TIMEOUT
from conveyor.registry.answer import (
    MANIFEST_ACCEPT,
    Answer,
    Manifest,
    ManifestFormatError,
    Verdict,
    classify,
    config_labels,
    parse_challenge,
    pick_platform,
    read_manifest,
)

_API_HOSTS = {"docker.io": "registry-1.docker.io"}
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_MACHINES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def plain_http(host: str, insecure: bool) -> bool:
    """Whether ``host`` is spoken to over plain HTTP: when configured so, or on loopback."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return insecure or name in _LOOPBACK or name.startswith("127.")


CERTS_DIRS = (
    Path.home() / ".config" / "containers" / "certs.d",
    Path("/etc/containers/certs.d"),
    Path("/etc/docker/certs.d"),
)
"""Where podman and docker look for a registry's CA certificates (``HOST[:PORT]/*.crt``)."""


def trust(host: str, ca_bundle: Path | None, certs_dirs: Sequence[Path]) -> ssl.SSLContext:
    """The system's CAs, plus ``ca_bundle`` and the host's ``certs.d`` certificates.

    Raises:
        EngineError: a CA file cannot be read or is not PEM.
    """
    files = [ca_bundle] if ca_bundle is not None else []
    for directory in certs_dirs:
        if (directory / host).is_dir():
            files.extend(sorted((directory / host).glob("*.crt")))
    if not files:
        return system_trust()
    context = ssl.create_default_context()
    for path in files:
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise EngineError(
                f"the CA certificate {path} for registry {host} cannot be used: {exc}",
                hint="point run.ca_bundle (or the certs.d entry) at a PEM file",
            ) from None
    return context


@functools.cache
def system_trust() -> ssl.SSLContext:
    """The system's CAs alone, loaded once per process (that takes 20 ms or more).

    Shared by every client that trusts nothing else: a context is not changed
    after it is made.
    """
    return ssl.create_default_context()


def this_platform() -> str:
    """``linux/<architecture>`` of this machine, the entry an index is read for."""
    machine = platform.machine()
    return f"linux/{_MACHINES.get(machine, machine)}"


class RegistryClient:
    """Reads manifests and config blobs of one registry.

    Args:
        host: ``host[:port]`` of the registry.
        auth: Credentials, or ``None`` for anonymous access.
        insecure: Plain HTTP (``registry.insecure``).
        timeout: Seconds per connect/read/write.
        ca_bundle: Extra CAs to trust (PEM) for HTTPS.
        scheme: ``http`` or ``https`` regardless of the rules above (tests).
        transport: An httpx transport instead of the network (tests).
        certs_dirs: Where ``HOST/*.crt`` CA files are looked for, as podman
            and docker do (containers-certs.d(5)).
    """

    def __init__(
        self,
        host: str,
        *,
        auth: RegistryAuth | None = None,
        insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        ca_bundle: Path | None = None,
        scheme: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        certs_dirs: Sequence[Path] = CERTS_DIRS,
    ) -> None:
        self.host = host
        self._auth = auth
        self._timeout = timeout
        self._scheme = scheme or ("http" if plain_http(host, insecure) else "https")
        self._base = f"{self._scheme}://{_API_HOSTS.get(host, host)}"
        self._tls = trust(host, ca_bundle, certs_dirs)
        self._transport = transport
        self._tokens: dict[str, str] = {}

    # -- public ------------------------------------------------------------------

    async def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest ``reference`` (a tag or digest) of ``repository``; ``None`` if absent.

        Raises:
            UnreachableError: no answer, or a 5xx/408/429 one.
            RegistryAuthError: 401/403.
            RegistryAnswerError: any other answer, or a body that is no manifest.
        """
        what = f"the manifest {repository}:{reference}"
        if reference.startswith("sha256:"):
            what = f"the manifest {repository}@{reference}"
        async with self._client() as http:
            response = await self._get(
                http, f"/v2/{repository}/manifests/{reference}", repository, MANIFEST_ACCEPT
            )
        answer = classify(response.status_code, response.content)
        if answer.verdict is Verdict.ABSENT:
            return None
        self._raise_for(answer, repository, what)
        try:
            found = read_manifest(response.content, response.headers.get("content-type", ""))
        except ManifestFormatError as exc:
            raise RegistryAnswerError(self.host, what, str(exc)) from exc
        if reference.startswith("sha256:") and found.digest != reference:
            raise RegistryAnswerError(self.host, what, f"the registry served {found.digest}")
        return found

    async def image_manifest(self, repository: str, reference: str) -> Manifest | None:
        """Like :meth:`manifest`, but an index is resolved to this machine's platform.

        The returned manifest's ``digest`` is still the tag's (the index's);
        its ``config`` is the chosen platform's image config.
        """
        found = await self.manifest(repository, reference)
        if found is None or not found.is_index:
            return found
        entry = pick_platform(found, this_platform())
        if entry is None:
            raise RegistryAnswerError(
                self.host, f"the index {repository}:{reference}", "it lists no manifests"
            )
        image = await self.manifest(repository, entry)
        if image is None or image.config is None:
            raise RegistryAnswerError(
                self.host,
                f"the index {repository}:{reference}",
                f"its entry {entry} is missing or not an image manifest",
            )
        return Manifest(found.digest, found.media_type, image.config, found.platforms)

    async def remote_image(self, repository: str, reference: str) -> RemoteImage | None:
        """The digest and labels of ``repository:reference``; ``None`` when absent.

        Raises:
            UnreachableError, RegistryAuthError, RegistryAnswerError: as :meth:`manifest`.
        """
        found = await self.image_manifest(repository, reference)
        if found is None:
            return None
        assert found.config is not None  # image_manifest resolved it
        what = f"the image config {found.config} of {repository}:{reference}"
        async with self._client() as http:
            response = await self._get(
                http, f"/v2/{repository}/blobs/{found.config}", repository, "*/*", redirect=True
            )
        answer = classify(response.status_code, response.content)
        if answer.verdict is Verdict.ABSENT:
            raise RegistryAnswerError(self.host, what, "the blob is missing")
        self._raise_for(answer, repository, what)
        try:
            labels = config_labels(response.content)
        except ManifestFormatError as exc:
            raise RegistryAnswerError(self.host, what, str(exc)) from exc
        return RemoteImage(found.digest, labels)

    # -- requests ----------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self._base,
            timeout=httpx.Timeout(self._timeout),
            verify=self._tls,
            transport=self._transport,
            trust_env=False,
            headers={"User-Agent": "conveyor"},
        )

    async def _send(
        self, http: httpx.AsyncClient, request: httpx.Request, *, redirect: bool = False
    ) -> httpx.Response:
        try:
            return await http.send(request, follow_redirects=redirect)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    async def _get(
        self,
        http: httpx.AsyncClient,
        path: str,
        repository: str,
        accept: str,
        *,
        redirect: bool = False,
    ) -> httpx.Response:
        scope = f"repository:{repository}:pull"
        headers = {"Accept": accept, **self._authorization(scope)}
        response = await self._send(
            http, http.build_request("GET", path, headers=headers), redirect=redirect
        )
        if response.status_code != 401 or "Authorization" in headers:
            return response
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        if challenge is None:
            return response
        if challenge.scheme == "bearer" and "realm" in challenge.params:
            self._tokens[scope] = await self._token(http, challenge.params, scope, repository)
        elif challenge.scheme != "basic" or self._auth is None:
            return response
        headers = {"Accept": accept, **self._authorization(scope, basic=True)}
        return await self._send(
            http, http.build_request("GET", path, headers=headers), redirect=redirect
        )

    def _authorization(self, scope: str, *, basic: bool = False) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if basic and self._auth is not None and not self._auth.identity_token:
            credentials = httpx.BasicAuth(self._auth.username, self._auth.password.reveal())
            request = next(credentials.auth_flow(httpx.Request("GET", self._base)))
            return {"Authorization": request.headers["Authorization"]}
        return {}

    async def _token(
        self, http: httpx.AsyncClient, params: Mapping[str, str], scope: str, repository: str
    ) -> str:
        """A bearer token for ``scope`` from the challenge's realm."""
        realm = params["realm"]
        query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
        if self._auth is not None and self._auth.identity_token:
            request = http.build_request(
                "POST",
                realm,
                data={
                    **query,
                    "grant_type": "refresh_token",
                    "refresh_token": self._auth.password.reveal(),
                    "client_id": "conveyor",
                },
            )
        else:
            request = http.build_request("GET", realm, params=query)
            if self._auth is not None:
                auth = httpx.BasicAuth(self._auth.username, self._auth.password.reveal())
                request = next(auth.auth_flow(request))
        response = await self._send(http, request)
        answer = classify(response.status_code, response.content)
        what = "a token request to its authorization server"
        self._raise_for(answer, repository, what)
        try:
            data = response.json()
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryAnswerError(self.host, what, "the answer holds no token")
        return token

    # -- errors ------------------------------------------------------------------

    def _raise_for(self, answer: Answer, repository: str, what: str) -> None:
        if answer.verdict is Verdict.FOUND:
            return
        if answer.verdict is Verdict.CREDENTIALS:
            raise RegistryAuthError(self.host, repository, answer.status, answer.detail)
        if answer.verdict is Verdict.UNREACHABLE:
            raise UnreachableError(
                "registry",
                self.host,
                f"it answered {answer.status} to {what} ({answer.detail})",
                hint="the registry is failing or overloaded; retry later (nothing was pushed)",
            )
        raise RegistryAnswerError(self.host, what, f"{answer.status} ({answer.detail})")

    def _unreachable(self, exc: httpx.TransportError) -> UnreachableError:
        text = _reason(exc)
        hint = "check that the registry runs and the address is right (nothing was pushed)"
        if isinstance(exc, httpx.TimeoutException):
            detail = f"no answer within {self._timeout:g}s ({type(exc).__name__})"
        elif isinstance(exc, httpx.RemoteProtocolError):
            detail = f"the connection closed before the answer ({text})"
        elif isinstance(exc, httpx.ConnectError):
            detail = f"cannot connect over {self._scheme.upper()}: {text}"
            lowered = text.lower()
            if "wrong version number" in lowered or "record layer" in lowered:
                hint = "the registry speaks plain HTTP: set registry.insecure = true"
            elif "certificate" in lowered:
                hint = "the registry's certificate is not trusted: set run.ca_bundle"
        else:
            detail = f"{type(exc).__name__}: {text}"
        return UnreachableError("registry", self.host, detail, hint=hint)


def _reason(exc: BaseException) -> str:
    """The most telling text of a transport error: the OS error beneath, if any.

    httpx on anyio says "All connection attempts failed" for a refused
    connection; the ``OSError`` it chains says "Connection refused".
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return str(seen)
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            return (os.strerror(seen.errno) if seen.errno else str(seen.strerror)).lower()
        if isinstance(seen, ExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]
            continue
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def client_for(
    address: str,
    *,
    auth: RegistryAuth | None = None,
    insecure: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    ca_bundle: Path | None = None,
) -> tuple[RegistryClient, str, str]:
    """A client for ``address``'s registry, its repository and its tag (or digest)."""
    ref = parse(address)
    reference = ref.digest or ref.tag or "latest"
    client = RegistryClient(
        ref.registry, auth=auth, insecure=insecure, timeout=timeout, ca_bundle=ca_bundle
    )
    return client, ref.repository, reference
