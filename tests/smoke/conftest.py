from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Behaviour:
    """What the test server answers: ``before`` until ``ready_after`` seconds, then ``after``.

    Each answer is (status, content type, body).
    """

    before: tuple[int, str, str] = (200, "text/plain", "v1")
    after: tuple[int, str, str] | None = None
    ready_after: float = 0.0
    started: float = field(default_factory=time.monotonic)
    requests: list[float] = field(default_factory=list)

    def answer(self) -> tuple[int, str, str]:
        now = time.monotonic()
        self.requests.append(now)
        if self.after is not None and now - self.started >= self.ready_after:
            return self.after
        return self.before


class VersionServer:
    """A real HTTP server on 127.0.0.1 serving /version from a :class:`Behaviour`."""

    def __init__(self, behaviour: Behaviour, port: int = 0) -> None:
        self.behaviour = behaviour

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = behaviour.answer()
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the probe gave up on this request (its timeout); expected

            def log_message(self, format: str, *args: object) -> None:
                pass

        # Bound and listening only in start(): until then connections are refused.
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/version"

    def start(self) -> VersionServer:
        self.httpd.server_bind()
        self.httpd.server_activate()
        self.thread.start()
        return self

    def stop(self) -> None:
        if not self.thread.is_alive():
            self.httpd.server_close()
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[type[VersionServer]]:
    """Start servers with ``serve(behaviour).start()``; all are stopped after the test."""
    started: list[VersionServer] = []

    class Tracked(VersionServer):
        def start(self) -> VersionServer:
            started.append(self)
            return super().start()

    yield Tracked
    for server in started:
        server.stop()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def json_body(**fields: object) -> str:
    return json.dumps(fields)
