"""What a registry holds under a tag, asked through the OCI distribution HTTP API.

The Dagger API has no "inspect this remote manifest" query, and resolving a
missing tag through ``from_`` is an error indistinguishable from a network
failure.  So ``DaggerEngine.inspect_remote`` asks the registry directly,
answering a ``401`` challenge the way docker does (Bearer token from the
realm, or Basic):

1. ``GET /v2/<repository>/manifests/<tag>``: 404 means absent; the digest is
   the ``Docker-Content-Digest`` header (else the SHA-256 of the body).
2. An index (multi-platform) is followed to its first platform manifest,
   passing over attestation entries (platform ``unknown/unknown``).
3. ``GET /v2/<repository>/blobs/<config digest>``: the labels are the image
   config's ``config.Labels``.

This needs no extra image, works the same on a laptop and inside a Dagger
module's runtime container, and is checked against a real registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from conveyor.engines.port import RegistryAuth, RemoteImage
from conveyor.errors import EngineError, UnreachableError
from conveyor.policy.reference import DEFAULT_REGISTRY, parse

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_DOCKER_HUB_API = "registry-1.docker.io"
_MAX_INDEX_DEPTH = 4


def _api_host(registry: str) -> str:
    return _DOCKER_HUB_API if registry == DEFAULT_REGISTRY else registry


def _verify(ca_bundle: Path | None) -> ssl.SSLContext:
    # The system store, not certifi's: corporate proxies add their CA there.
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


async def inspect_manifest(
    address: str,
    *,
    insecure: bool = False,
    auth: RegistryAuth | None = None,
    ca_bundle: Path | None = None,
    request_timeout: float = 30.0,
) -> RemoteImage | None:
    """The digest and config labels of ``address`` (registry/repo:tag or @digest).

    Args:
        address: The image reference to look up.
        insecure: Speak plain HTTP to the registry (a local or test registry).
        auth: Credentials for a private registry.
        ca_bundle: Extra CA certificates to trust.
        request_timeout: Seconds per request.

    Returns:
        The image, or ``None`` when the registry has no such tag or repository.

    Raises:
        InvalidReferenceError: ``address`` is not an image reference.
        UnreachableError: the registry did not answer.
        EngineError: the registry answered something else than found/not
            found, or a manifest or config that cannot be read.
    """
    ref = parse(address)
    reference = ref.digest or ref.tag
    if reference is None:
        raise EngineError(
            f"cannot look up {address!r}: it has neither a tag nor a digest",
            hint="publish addresses carry the git SHA as their tag",
        )
    scheme = "http" if insecure else "https"
    host = _api_host(ref.registry)
    verify: ssl.SSLContext | bool = False if insecure else _verify(ca_bundle)
    async with httpx.AsyncClient(
        verify=verify, timeout=request_timeout, follow_redirects=True
    ) as http:
        session = _Session(http, f"{scheme}://{host}/v2/{ref.repository}", ref.repository, auth)
        top = await session.get(f"manifests/{reference}", accept=MANIFEST_TYPES)
        if top.status_code == httpx.codes.NOT_FOUND:
            return None
        _expect_ok(top, f"{ref.name}:{reference}")
        digest = top.headers.get("docker-content-digest") or (
            "sha256:" + hashlib.sha256(top.content).hexdigest()
        )
        manifest = _json(top, f"manifest {ref.name}:{reference}")
        for _ in range(_MAX_INDEX_DEPTH):
            if not _is_index(top, manifest):
                break
            child = _first_platform(manifest, f"{ref.name}:{reference}")
            top = await session.get(f"manifests/{child}", accept=MANIFEST_TYPES)
            _expect_ok(top, f"{ref.name}@{child}")
            manifest = _json(top, f"manifest {ref.name}@{child}")
        config_digest = _config_digest(manifest, f"{ref.name}:{reference}")
        blob = await session.get(f"blobs/{config_digest}", accept="*/*")
        _expect_ok(blob, f"config blob {config_digest} of {ref.name}")
        config = _json(blob, f"config blob {config_digest} of {ref.name}")
    return RemoteImage(digest, _labels(config))


class _Session:
    """GETs under one repository, answering the first 401 challenge for all that follow."""

    def __init__(
        self, http: httpx.AsyncClient, base: str, repository: str, auth: RegistryAuth | None
    ) -> None:
        self.http = http
        self.base = base
        self.repository = repository
        self.auth = auth
        self.authorization: str | None = None

    async def get(self, path: str, *, accept: str) -> httpx.Response:
        url = f"{self.base}/{path}"
        headers = {"Accept": accept}
        try:
            if self.authorization is not None:
                headers["Authorization"] = self.authorization
            response = await self.http.get(url, headers=headers)
            if response.status_code == httpx.codes.UNAUTHORIZED and self.authorization is None:
                self.authorization = await _authorization(
                    self.http, response, self.repository, self.auth
                )
                headers["Authorization"] = self.authorization
                response = await self.http.get(url, headers=headers)
        except httpx.TransportError as exc:
            raise UnreachableError(
                "registry",
                httpx.URL(url).netloc.decode(),
                str(exc) or type(exc).__name__,
                hint="check the registry address and your network; "
                "set registry.insecure for a plain-HTTP registry",
            ) from exc
        return response


def _expect_ok(response: httpx.Response, what: str) -> None:
    if response.status_code == httpx.codes.OK:
        return
    hint = None
    if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        hint = "set registry.username_env and registry.password_env to credentials that can pull"
    raise EngineError(
        f"registry {response.request.url.netloc.decode()} answered "
        f"{response.status_code} for {what}",
        hint=hint,
    )


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except ValueError as exc:
        raise EngineError(f"the registry sent a {what} that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EngineError(f"the registry sent a {what} that is not a JSON object")
    return data


def _is_index(response: httpx.Response, manifest: Mapping[str, Any]) -> bool:
    media_type = manifest.get("mediaType") or response.headers.get("content-type", "")
    return str(media_type).split(";")[0].strip() in INDEX_TYPES or (
        "manifests" in manifest and "config" not in manifest
    )


def _first_platform(index: Mapping[str, Any], what: str) -> str:
    """The digest of the index's first platform manifest (not an attestation)."""
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict) and e.get("digest")]
    if not entries:
        raise EngineError(f"the registry's index for {what} lists no manifests")
    for entry in entries:
        platform = entry.get("platform") or {}
        if platform.get("os") != "unknown":
            return str(entry["digest"])
    return str(entries[0]["digest"])


def _config_digest(manifest: Mapping[str, Any], what: str) -> str:
    config = manifest.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str) or not digest:
        raise EngineError(f"the registry's manifest for {what} names no image config")
    return digest


def _labels(config: Mapping[str, Any]) -> dict[str, str]:
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    if not isinstance(labels, dict):
        return {}
    return {str(key): str(value) for key, value in labels.items()}


async def _authorization(
    http: httpx.AsyncClient,
    challenge: httpx.Response,
    repository: str,
    auth: RegistryAuth | None,
) -> str:
    """The Authorization header that answers a registry's 401 challenge."""
    header = challenge.headers.get("www-authenticate", "")
    scheme, _, params_text = header.partition(" ")
    basic = (auth.username, auth.password.reveal()) if auth is not None else None
    if scheme.lower() == "basic":
        if basic is None:
            raise EngineError(
                f"registry {challenge.url.host} needs credentials",
                hint="set registry.username_env and registry.password_env",
            )
        return "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    if scheme.lower() != "bearer":
        raise EngineError(
            f"registry {challenge.url.host} asks for unsupported authentication {scheme!r}"
        )
    params = dict(_CHALLENGE_PARAM.findall(params_text))
    realm = params.pop("realm", "")
    if not realm:
        raise EngineError(f"registry {challenge.url.host} sent a Bearer challenge without realm")
    params.setdefault("scope", f"repository:{repository}:pull")
    response = await http.get(realm, params=params, auth=basic)
    if response.status_code != httpx.codes.OK:
        raise EngineError(
            f"token service {httpx.URL(realm).host} answered {response.status_code}",
            hint="check the registry credentials (registry.username_env/password_env)",
        )
    body = response.json()
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or not token:
        raise EngineError(f"token service {httpx.URL(realm).host} returned no token")
    return f"Bearer {token}"
