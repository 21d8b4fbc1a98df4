"""RegistryClient against real registries; the token dance against a named double."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.engines.port import RegistryAuth, RemoteImage
from conveyor.errors import EngineError, RegistryAnswerError, RegistryAuthError, UnreachableError
from conveyor.registry.client import RegistryClient, client_for, plain_http
from conveyor.secrets import Secret
from engines.registry_api import PrivateRegistry, manifest_size, push_image, push_index


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.mark.parametrize(
    ("host", "insecure", "plain"),
    [
        ("127.0.0.1:5000", False, True),
        ("localhost:5000", False, True),
        ("localhost", False, True),
        ("[::1]:5000", False, True),
        ("myacr.azurecr.io", False, False),
        ("registry.lan:5000", True, True),
    ],
)
def test_plain_http(host: str, insecure: bool, plain: bool) -> None:
    assert plain_http(host, insecure) is plain


async def test_found_absent_tag_and_absent_repository(registry: str) -> None:
    repository = f"conveyor-test/client-{uuid.uuid4().hex[:8]}"
    digest = push_image(registry, repository, "1", {"org.opencontainers.image.revision": "abc"})
    client = RegistryClient(registry)

    assert await client.remote_image(repository, "1") == RemoteImage(
        digest, {"org.opencontainers.image.revision": "abc"}
    )
    assert await client.remote_image(repository, "2") is None
    assert await client.remote_image("conveyor-test/never-pushed", "1") is None
    manifest = await client.manifest(repository, digest)
    assert manifest is not None
    assert manifest.digest == digest


async def test_an_index_is_read_for_this_platform_and_keeps_its_digest(registry: str) -> None:
    repository = f"conveyor-test/index-{uuid.uuid4().hex[:8]}"
    arm = push_image(registry, repository, "arm", {"p": "arm"}, architecture="arm64")
    amd = push_image(registry, repository, "amd", {"p": "amd"}, architecture="amd64")
    index = push_index(
        registry,
        repository,
        "both",
        [
            {"digest": d, "size": manifest_size(registry, repository, d), "platform": p}
            for d, p in (
                (arm, {"os": "linux", "architecture": "arm64"}),
                (amd, {"os": "linux", "architecture": "amd64"}),
            )
        ],
    )
    remote = await RegistryClient(registry).remote_image(repository, "both")
    assert remote == RemoteImage(index, {"p": "amd"})


async def test_https_to_a_plain_http_registry_says_to_set_insecure(registry: str) -> None:
    with pytest.raises(UnreachableError) as caught:
        await RegistryClient(registry, scheme="https").remote_image("hello", "1")
    assert "registry.insecure = true" in str(caught.value)
    assert caught.value.target == registry


async def test_basic_auth(basic_registry: PrivateRegistry) -> None:
    repository = f"conveyor-test/basic-{uuid.uuid4().hex[:8]}"
    user, password = basic_registry.user, basic_registry.password
    digest = push_image(basic_registry.host, repository, "1", {"a": "b"}, auth=(user, password))
    good = RegistryAuth(user, Secret("PW", password))

    client, repo, tag = client_for(f"{basic_registry.host}/{repository}:1", auth=good)
    assert await client.remote_image(repo, tag) == RemoteImage(digest, {"a": "b"})
    for auth in (None, RegistryAuth(user, Secret("PW", "not-the-pw-77"))):
        with pytest.raises(RegistryAuthError) as caught:
            await RegistryClient(basic_registry.host, auth=auth).remote_image(repository, "1")
        assert caught.value.status == 401
        assert "not-the-pw-77" not in str(caught.value)
        assert password not in str(caught.value)


# -- the token dance, against a double of a token-auth registry ---------------------

TOKEN = "tok-" + "9" * 20
CONFIG = b'{"config": {"Labels": {"k": "v"}}}'
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"digest": CONFIG_DIGEST}, "layers": []}
).encode()  # fmt: skip


def token_registry(seen: list[httpx.Request], token_status: int = 200) -> httpx.MockTransport:
    """A double of a registry with a Bearer token server (ACR, Docker Hub, GHCR do this)."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/oauth2/token":
            if token_status != 200:
                return httpx.Response(token_status, json={"errors": [{"code": "UNAUTHORIZED"}]})
            return httpx.Response(200, json={"access_token": TOKEN})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://reg.example/oauth2/token",'
                    'service="reg.example",scope="repository:app:pull"'
                },
                json={"errors": [{"code": "UNAUTHORIZED"}]},
            )
        if request.url.path == "/v2/app/manifests/1":
            return httpx.Response(200, content=MANIFEST)
        if request.url.path == f"/v2/app/blobs/{CONFIG_DIGEST}":
            return httpx.Response(200, content=CONFIG)
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    return httpx.MockTransport(handle)


def only(seen: list[httpx.Request], path: str) -> Callable[[], httpx.Request]:
    return lambda: next(r for r in seen if r.url.path == path)


async def test_bearer_token_with_basic_credentials() -> None:
    seen: list[httpx.Request] = []
    auth = RegistryAuth("robot", Secret("PW", "pa55"))
    client = RegistryClient("reg.example", auth=auth, transport=token_registry(seen))

    remote = await client.remote_image("app", "1")

    assert remote is not None
    assert remote.labels == {"k": "v"}
    token_request = only(seen, "/oauth2/token")()
    assert token_request.method == "GET"
    assert token_request.url.params["scope"] == "repository:app:pull"
    assert token_request.url.params["service"] == "reg.example"
    assert (
        token_request.headers["authorization"]
        == "Basic " + base64.b64encode(b"robot:pa55").decode()
    )
    assert str(seen[0].url).startswith("https://reg.example/v2/app/manifests/1")
    assert "application/vnd.oci.image.index.v1+json" in seen[0].headers["accept"]
    assert await client.remote_image("app", "2") is None


async def test_an_identity_token_is_exchanged_with_the_refresh_token_grant() -> None:
    seen: list[httpx.Request] = []
    auth = RegistryAuth("00000000-0000-0000-0000-000000000000", Secret("PW", "refresh-77"), True)
    client = RegistryClient("reg.example", auth=auth, transport=token_registry(seen))

    assert await client.remote_image("app", "1") is not None

    token_request = only(seen, "/oauth2/token")()
    assert token_request.method == "POST"
    form = dict(httpx.QueryParams(token_request.content.decode()))
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "refresh-77"
    assert form["scope"] == "repository:app:pull"
    assert "authorization" not in token_request.headers


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, RegistryAuthError), (503, UnreachableError), (400, RegistryAnswerError)],
)
async def test_a_token_server_failure_is_classified(status: int, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []
    client = RegistryClient(
        "reg.example",
        auth=RegistryAuth("robot", Secret("PW", "pa55-x")),
        transport=token_registry(seen, token_status=status),
    )
    with pytest.raises(error) as caught:
        await client.remote_image("app", "1")
    assert "pa55-x" not in str(caught.value)
    assert all(r.url.path != "/v2/app/blobs" for r in seen)


# -- HTTPS with a private CA ----------------------------------------------------------


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real docker-registry over HTTPS with a self-signed certificate; host and cert."""
    directory = tmp_path_factory.mktemp("tls-registry")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n"
    )
    binary = shutil.which("docker-registry")
    assert binary, "the Debian package docker-registry provides the test registry"
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield host, cert
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_https_with_the_hosts_certs_d_entry_or_a_ca_bundle(
    tls_registry: tuple[str, Path], tmp_path: Path
) -> None:
    host, cert = tls_registry
    certs_d = tmp_path / "certs.d"
    (certs_d / host).mkdir(parents=True)
    (certs_d / host / "ca.crt").write_bytes(cert.read_bytes())

    trusted = RegistryClient(host, scheme="https", certs_dirs=[certs_d])
    assert await trusted.remote_image("conveyor-test/tls", "1") is None
    bundled = RegistryClient(host, scheme="https", ca_bundle=cert, certs_dirs=[])
    assert await bundled.remote_image("conveyor-test/tls", "1") is None

    with pytest.raises(UnreachableError) as caught:
        await RegistryClient(host, scheme="https", certs_dirs=[]).remote_image("x/tls", "1")
    assert "set run.ca_bundle" in str(caught.value)


def test_a_ca_file_that_is_not_pem_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "ca.crt"
    broken.write_text("not a certificate\n")
    with pytest.raises(EngineError) as caught:
        RegistryClient("reg.example", ca_bundle=broken)
    assert str(broken) in str(caught.value)
