"""inspect_remote through the registry HTTP API, against a real registry (CNCF distribution).

The Dagger engine's registry lookups never reach the Dagger API: the double
of that API (``dagger_query``) only lets the engine be constructed, and each
test checks that no query was sent to it.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import anyio
import pytest
from dagger_query import DaggerApiDouble
from registry_api import PrivateRegistry, manifest_size, push_image, push_index

from conveyor.engines.dagger import DaggerEngine
from conveyor.engines.dagger_registry import inspect_manifest
from conveyor.engines.port import RegistryAuth, RemoteImage
from conveyor.errors import EngineError, UnreachableError
from conveyor.secrets import Secret

pytestmark = pytest.mark.anyio

SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
REVISION = "org.opencontainers.image.revision"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def tool(*argv: str) -> str:
    return (await anyio.run_process(list(argv), check=True)).stdout.decode()


def unique(name: str) -> str:
    """A repository of its own per test: the session registry is shared."""
    return f"acme/{name}-{uuid.uuid4().hex[:8]}"


async def test_a_pushed_image_is_found_with_its_digest_and_labels(registry: str) -> None:
    repository = unique("hello")
    digest = push_image(registry, repository, SHA, {REVISION: SHA, "team": "blue"})
    double = DaggerApiDouble()
    engine = DaggerEngine(double.client())

    found = await engine.inspect_remote(f"{registry}/{repository}:{SHA}", insecure=True)

    assert found == RemoteImage(digest, {REVISION: SHA, "team": "blue"})
    assert await engine.inspect_remote(f"{registry}/{repository}:{'0' * 40}", insecure=True) is None
    assert await engine.inspect_remote(f"{registry}/acme/never-pushed:{SHA}", insecure=True) is None
    assert double.documents == []


async def test_an_image_config_without_labels_has_none(registry: str) -> None:
    repository = unique("bare")
    digest = push_image(registry, repository, SHA, labels=None)

    found = await inspect_manifest(f"{registry}/{repository}:{SHA}", insecure=True)

    assert found == RemoteImage(digest, {})


async def test_an_image_pushed_by_podman_reads_as_skopeo_reports_it(
    registry: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM scratch\nCOPY Dockerfile /\nLABEL {REVISION}={SHA}\n"
    )
    local = f"localhost/conveyor-test/registry-api:{uuid.uuid4().hex[:10]}"
    address = f"{registry}/{unique('podman')}:{SHA}"
    try:
        await tool("podman", "build", "-q", "-t", local, str(context))
        await tool("podman", "push", "-q", "--tls-verify=false", local, f"docker://{address}")
    finally:
        await anyio.run_process(["podman", "rmi", "-f", local], check=False)
    skopeo = json.loads(
        await tool("skopeo", "inspect", "--tls-verify=false", f"docker://{address}")
    )

    found = await inspect_manifest(address, insecure=True)

    assert found is not None
    assert found.digest == skopeo["Digest"]
    assert found.labels == skopeo["Labels"]
    assert found.labels[REVISION] == SHA


async def test_an_index_is_followed_to_its_first_platform_past_attestations(
    registry: str,
) -> None:
    repository = unique("multi")
    attestation = push_image(registry, repository, "att", {"kind": "attestation"})
    amd64 = push_image(registry, repository, "amd64", {REVISION: SHA, "arch": "amd64"})
    arm64 = push_image(
        registry, repository, "arm64", {REVISION: SHA, "arch": "arm64"}, architecture="arm64"
    )
    index = push_index(
        registry,
        repository,
        SHA,
        [
            {
                "digest": digest,
                "size": manifest_size(registry, repository, digest),
                "platform": platform,
            }
            for digest, platform in (
                (attestation, {"os": "unknown", "architecture": "unknown"}),
                (amd64, {"os": "linux", "architecture": "amd64"}),
                (arm64, {"os": "linux", "architecture": "arm64"}),
            )
        ],
    )

    found = await inspect_manifest(f"{registry}/{repository}:{SHA}", insecure=True)

    assert found == RemoteImage(index, {REVISION: SHA, "arch": "amd64"})
    # and a platform manifest addressed by digest is read directly
    by_digest = await inspect_manifest(f"{registry}/{repository}@{arm64}", insecure=True)
    assert by_digest == RemoteImage(arm64, {REVISION: SHA, "arch": "arm64"})


async def test_an_address_without_tag_cannot_be_looked_up(registry: str) -> None:
    with pytest.raises(EngineError, match="neither a tag nor a digest"):
        await inspect_manifest(f"{registry}/acme/hello", insecure=True)


async def test_a_registry_that_does_not_answer_is_unreachable() -> None:
    port = free_port()
    with pytest.raises(UnreachableError) as caught:
        await inspect_manifest(f"127.0.0.1:{port}/acme/hello:{SHA}", insecure=True)

    assert caught.value.target == f"127.0.0.1:{port}"
    assert "registry.insecure" in (caught.value.hint or "")


async def test_tls_is_verified_unless_the_registry_is_insecure(registry: str) -> None:
    # The registry speaks plain HTTP: a TLS lookup must fail, not silently downgrade.
    with pytest.raises(UnreachableError):
        await inspect_manifest(f"{registry}/acme/hello:{SHA}")


async def test_a_basic_challenge_is_answered_for_the_manifest_and_the_config_blob(
    private_registry: PrivateRegistry,
) -> None:
    registry = private_registry
    repository = unique("private")
    digest = push_image(
        registry.host, repository, SHA, {REVISION: SHA}, auth=(registry.user, registry.password)
    )
    auth = RegistryAuth(registry.user, Secret("REGISTRY_PASSWORD", registry.password))

    found = await inspect_manifest(f"{registry.host}/{repository}:{SHA}", insecure=True, auth=auth)
    missing = await inspect_manifest(
        f"{registry.host}/{repository}:{'0' * 40}", insecure=True, auth=auth
    )

    assert found == RemoteImage(digest, {REVISION: SHA})
    assert missing is None


async def test_a_basic_challenge_without_credentials_says_which_to_set(
    private_registry: PrivateRegistry,
) -> None:
    with pytest.raises(EngineError, match="needs credentials") as caught:
        await inspect_manifest(f"{private_registry.host}/acme/hello:{SHA}", insecure=True)

    assert "registry.username_env" in (caught.value.hint or "")


async def test_refused_credentials_are_an_error_that_does_not_show_them(
    private_registry: PrivateRegistry,
) -> None:
    wrong = RegistryAuth(private_registry.user, Secret("REGISTRY_PASSWORD", "wrong-pw-9c41"))

    with pytest.raises(EngineError) as caught:
        await inspect_manifest(
            f"{private_registry.host}/acme/hello:{SHA}", insecure=True, auth=wrong
        )

    assert f"registry {private_registry.host} answered 401" in caught.value.message
    assert "registry.password_env" in (caught.value.hint or "")
    assert "wrong-pw-9c41" not in str(caught.value)
