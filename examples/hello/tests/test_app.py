"""Unit tests of the hello service; run in the test stage, writing JUnit XML."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import ThreadingHTTPServer

import app
import pytest


def test_version_comes_from_app_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_VERSION", "0123abc")
    status, content_type, body = app.respond("/version")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"app": "hello", "version": "0123abc"}


def test_version_defaults_to_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_VERSION", raising=False)
    assert json.loads(app.respond("/version")[2])["version"] == "dev"


def test_healthz_and_unknown_paths() -> None:
    assert app.respond("/healthz") == (200, "text/plain", b"ok\n")
    assert app.respond("/nope")[0] == 404


def test_server_answers_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_VERSION", "served")
    server = ThreadingHTTPServer(("127.0.0.1", 0), app.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/version?probe=1"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.loads(response.read())["version"] == "served"
    finally:
        server.shutdown()
        server.server_close()
