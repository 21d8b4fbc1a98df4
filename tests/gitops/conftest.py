"""Fixtures of the GitOps tests: copies of the manifest layouts in tests/resources."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gitops_helpers import GitHttpServer, make_remote

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """A fresh copy of tests/resources/manifests."""
    target = tmp_path / "manifests"
    shutil.copytree(RESOURCES, target)
    return target


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare manifest repository seeded with tests/resources/manifests."""
    return make_remote(tmp_path, RESOURCES)


@pytest.fixture
def http_remote(tmp_path: Path, remote: Path) -> Iterator[GitHttpServer]:
    """The ``remote`` repository served over HTTP with a token."""
    server_state = GitHttpServer(root=remote.parent, token="s3cr3t-token-value")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            header = self.headers.get("Authorization", "")
            server_state.seen_authorization.append(header)
            expected = (
                "Basic "
                + base64.b64encode(f"{server_state.user}:{server_state.token}".encode()).decode()
            )
            if header != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self._body()
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(server_state.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "REMOTE_USER": server_state.user,
                "REMOTE_ADDR": "127.0.0.1",
            }
            out = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            ).stdout
            head, _, content = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                key, _, value = line.partition(": ")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}/{remote.name}"
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
