"""tag_exists through the registry HTTP API, against a real registry (CNCF distribution)."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from dagger_query import DaggerApiDouble

from conveyor.engines.dagger import DaggerEngine
from conveyor.engines.dagger_registry import manifest_exists
from conveyor.errors import EngineError, UnreachableError

SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real docker-registry on 127.0.0.1; yields its host:port."""
    binary = shutil.which("docker-registry")
    assert binary, "the Debian package docker-registry provides the test registry"
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"http://{host}/v2/").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        yield host
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def push_manifest(host: str, repository: str, tag: str) -> None:
    """Push a minimal OCI image (config blob, no layers) with the registry API."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with httpx.Client(base_url=f"http://{host}") as http:
        start = http.post(f"/v2/{repository}/blobs/uploads/")
        assert start.status_code == 202
        location = httpx.URL(start.headers["location"])
        put = http.put(location.copy_merge_params({"digest": digest}), content=config)
        assert put.status_code == 201, put.text
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": len(config),
            },
            "layers": [],
        }
        pushed = http.put(
            f"/v2/{repository}/manifests/{tag}",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert pushed.status_code == 201, pushed.text


@pytest.mark.anyio
async def test_a_pushed_tag_exists_and_another_does_not(registry: str) -> None:
    push_manifest(registry, "acme/hello", SHA)
    engine = DaggerEngine(DaggerApiDouble().client())

    assert await engine.tag_exists(f"{registry}/acme/hello:{SHA}", insecure=True)
    assert not await engine.tag_exists(f"{registry}/acme/hello:{'0' * 40}", insecure=True)
    assert not await engine.tag_exists(f"{registry}/acme/never-pushed:{SHA}", insecure=True)


@pytest.mark.anyio
async def test_an_address_without_tag_cannot_be_looked_up(registry: str) -> None:
    with pytest.raises(EngineError, match="neither a tag nor a digest"):
        await manifest_exists(f"{registry}/acme/hello", insecure=True)


@pytest.mark.anyio
async def test_a_registry_that_does_not_answer_is_unreachable() -> None:
    port = free_port()
    with pytest.raises(UnreachableError) as caught:
        await manifest_exists(f"127.0.0.1:{port}/acme/hello:{SHA}", insecure=True)

    assert caught.value.target == f"127.0.0.1:{port}"
    assert "registry.insecure" in (caught.value.hint or "")


@pytest.mark.anyio
async def test_tls_is_verified_unless_the_registry_is_insecure(registry: str) -> None:
    # The registry speaks plain HTTP: a TLS lookup must fail, not silently downgrade.
    with pytest.raises(UnreachableError):
        await manifest_exists(f"{registry}/acme/hello:{SHA}")
