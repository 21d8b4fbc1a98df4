"""Push hand-made images to a real registry through the distribution HTTP API.

For shapes podman does not produce on its own: an image config without any
labels, and a multi-platform index whose platforms carry different labels.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(http: httpx.Client, repository: str, data: bytes) -> str:
    digest = digest_of(data)
    start = http.post(f"/v2/{repository}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = httpx.URL(start.headers["location"])
    put = http.put(location.copy_merge_params({"digest": digest}), content=data)
    assert put.status_code == 201, put.text
    return digest


def put_manifest(
    http: httpx.Client, repository: str, reference: str, manifest: Mapping[str, Any]
) -> str:
    """PUT ``manifest`` under ``reference``; the digest the registry answers with."""
    body = json.dumps(manifest).encode()
    pushed = http.put(
        f"/v2/{repository}/manifests/{reference}",
        content=body,
        headers={"Content-Type": str(manifest["mediaType"])},
    )
    assert pushed.status_code == 201, pushed.text
    digest = pushed.headers["docker-content-digest"]
    assert digest == digest_of(body)
    return digest


def push_image(
    host: str,
    repository: str,
    tag: str,
    labels: Mapping[str, str] | None = None,
    *,
    architecture: str = "amd64",
    auth: tuple[str, str] | None = None,
) -> str:
    """Push a minimal OCI image (config blob, no layers); its manifest digest.

    ``labels=None`` leaves ``config`` out of the image config entirely;
    ``auth`` is a (user, password) pair for a registry behind Basic auth.
    """
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    if labels is not None:
        config["config"] = {"Labels": dict(labels)}
    data = json.dumps(config).encode()
    with httpx.Client(base_url=f"http://{host}", auth=auth) as http:
        config_digest = push_blob(http, repository, data)
        return put_manifest(
            http,
            repository,
            tag,
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(data),
                },
                "layers": [],
            },
        )


def push_index(host: str, repository: str, tag: str, entries: Sequence[Mapping[str, Any]]) -> str:
    """Push an OCI index of ``entries`` (each ``digest``, ``size``, ``platform``); its digest."""
    manifests = [{"mediaType": OCI_MANIFEST, **entry} for entry in entries]
    with httpx.Client(base_url=f"http://{host}") as http:
        return put_manifest(
            http,
            repository,
            tag,
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests},
        )


def manifest_size(host: str, repository: str, digest: str) -> int:
    """The byte size of a pushed manifest, as an index entry must state it."""
    response = httpx.head(
        f"http://{host}/v2/{repository}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}
    )
    assert response.status_code == 200, response.status_code
    return int(response.headers["content-length"])


@dataclass(frozen=True)
class PrivateRegistry:
    """A real registry behind HTTP Basic auth (htpasswd) and its one user."""

    host: str
    user: str
    password: str


@contextmanager
def private_registry(directory: Path, port: int) -> Iterator[PrivateRegistry]:
    """Run docker-registry with htpasswd auth on 127.0.0.1:``port`` under ``directory``."""
    binary = shutil.which("docker-registry")
    assert binary, "the Debian package docker-registry provides the test registry"
    user, password = "alice", "pw-" + secrets.token_hex(8)
    # bcrypt, the one scheme the registry's htpasswd accepts; crypt is deprecated
    # in the test interpreter (warnings are errors), so a separate one hashes.
    hashed = subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
         password],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert hashed.startswith("$2"), hashed
    (directory / "htpasswd").write_text(f"{user}:{hashed}\n")
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: conveyor-test\n    path: {directory / 'htpasswd'}\n",
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
                if httpx.get(f"http://{host}/v2/").status_code == 401:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        yield PrivateRegistry(host, user, password)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
