"""Push hand-made images to a real registry through the distribution HTTP API.

For shapes podman does not produce on its own: an image config without any
labels, and a multi-platform index whose platforms carry different labels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
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
) -> str:
    """Push a minimal OCI image (config blob, no layers); its manifest digest.

    ``labels=None`` leaves ``config`` out of the image config entirely.
    """
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    if labels is not None:
        config["config"] = {"Labels": dict(labels)}
    data = json.dumps(config).encode()
    with httpx.Client(base_url=f"http://{host}") as http:
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
