"""Whether a tag is in a registry, asked through the OCI distribution HTTP API.

The Dagger API has no "does this manifest exist" query, and resolving a
missing tag through ``from_`` is an error indistinguishable from a network
failure.  So ``DaggerEngine.tag_exists`` asks the registry directly:
``HEAD /v2/<repository>/manifests/<tag>``, answering a ``401`` challenge the
way docker does (Bearer token from the realm, or Basic).  This needs no extra
image, works the same on a laptop and inside a Dagger module's runtime
container, and is checked here against a real registry.

200 means the tag exists, 404 that it does not; anything else is an error
that names the registry and the status.
"""

from __future__ import annotations

import base64
import re
import ssl
from pathlib import Path

import httpx

from conveyor.engines.port import RegistryAuth
from conveyor.errors import EngineError, UnreachableError
from conveyor.policy.reference import DEFAULT_REGISTRY, parse

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


def _api_host(registry: str) -> str:
    return _DOCKER_HUB_API if registry == DEFAULT_REGISTRY else registry


def _verify(ca_bundle: Path | None) -> ssl.SSLContext:
    # The system store, not certifi's: corporate proxies add their CA there.
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


async def manifest_exists(
    address: str,
    *,
    insecure: bool = False,
    auth: RegistryAuth | None = None,
    ca_bundle: Path | None = None,
    request_timeout: float = 30.0,
) -> bool:
    """Whether the manifest ``address`` (registry/repo:tag or @digest) exists.

    Args:
        address: The image reference to look up.
        insecure: Speak plain HTTP to the registry (a local or test registry).
        auth: Credentials for a private registry.
        ca_bundle: Extra CA certificates to trust.
        request_timeout: Seconds per request.

    Raises:
        InvalidReferenceError: ``address`` is not an image reference.
        UnreachableError: the registry did not answer.
        EngineError: the registry answered something else than found/not found.
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
    url = f"{scheme}://{host}/v2/{ref.repository}/manifests/{reference}"
    headers = {"Accept": MANIFEST_TYPES}
    verify: ssl.SSLContext | bool = False if insecure else _verify(ca_bundle)
    async with httpx.AsyncClient(verify=verify, timeout=request_timeout) as http:
        try:
            response = await http.head(url, headers=headers)
            if response.status_code == httpx.codes.UNAUTHORIZED:
                headers["Authorization"] = await _authorization(
                    http, response, ref.repository, auth
                )
                response = await http.head(url, headers=headers)
        except httpx.TransportError as exc:
            raise UnreachableError(
                "registry",
                host,
                str(exc) or type(exc).__name__,
                hint="check the registry address and your network; "
                "set registry.insecure for a plain-HTTP registry",
            ) from exc
    if response.status_code == httpx.codes.OK:
        return True
    if response.status_code == httpx.codes.NOT_FOUND:
        return False
    hint = None
    if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        hint = "set registry.username_env and registry.password_env to credentials that can pull"
    raise EngineError(
        f"registry {host} answered {response.status_code} for {ref.name}:{reference}",
        hint=hint,
    )


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
