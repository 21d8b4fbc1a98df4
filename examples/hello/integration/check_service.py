"""Integration checks of the built image, served beside the stage as the service ``app``.

The integration stage of conveyor.toml runs these against the image the build
stage made, before anything is published: the container answers over the
network, by name, as it will in a cluster.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

BASE = os.environ.get("HELLO_URL", "http://app:8080")


def get(path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as response:  # noqa: S310 - http only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_service_reports_the_commit_it_was_built_from() -> None:
    status, body = get("/version")
    assert status == 200
    assert json.loads(body) == {"app": "hello", "version": os.environ["CONVEYOR_SHA"]}


def test_the_health_check_answers() -> None:
    assert get("/healthz") == (200, b"ok\n")


def test_an_unknown_path_is_not_found() -> None:
    assert get("/nope")[0] == 404
