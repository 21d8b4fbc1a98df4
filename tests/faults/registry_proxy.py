"""A fault-injecting HTTP reverse proxy on loopback, in front of a real registry.

Every request is forwarded to the upstream registry unless a :class:`Fault`
matches its method and path (regular expressions, ``re.fullmatch``); then the
fault happens instead:

- ``status``: answer ``status`` with a distribution error body whose message
  says "404 not found" (what must never be read as "absent"), without
  forwarding;
- ``hang``: never answer (until the proxy stops);
- ``drop``: close the connection without an answer, without forwarding;
- ``drop-after``: forward, let the registry act, then close the connection
  without passing its answer on (a push whose answer is lost);
- ``cut``: forward, then send the status line, the headers and half the
  body, and close (a connection dropped mid-response);
- ``before``: call ``hook`` (e.g. another writer pushing), then forward.

``times`` limits how often a fault fires (``None``: every time).  The proxy
keeps the ``Host`` header, so the registry's upload ``Location`` URLs point
back at the proxy.  It is a test tool: threads, stdlib only.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Action = Literal["status", "hang", "drop", "drop-after", "cut", "before"]
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Fault:
    method: str
    path: str
    action: Action
    status: int = 500
    times: int | None = None
    hook: Callable[[], None] | None = None
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return bool(re.fullmatch(self.method, method) and re.fullmatch(self.path, path))


@dataclass
class RegistryProxy:
    """The proxy's state: where it forwards, its faults, what it saw."""

    upstream: str
    host: str = ""
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, method: str, path: str, action: Action, **options: object) -> Fault:
        fault = Fault(method, path, action, **options)  # type: ignore[arg-type]
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None

    def requests(self, method: str, pattern: str = ".*") -> list[str]:
        """Paths of the requests seen with ``method`` whose path matches ``pattern``."""
        return [p for m, p, _ in self.seen if m == method and re.fullmatch(pattern, p)]


def _handler(proxy: RegistryProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test asserts on ``proxy.seen``."""

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body or self.command in ("PUT", "POST", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                content = response.read()
                return response.status, response.getheaders(), content
            finally:
                upstream.close()

        def _send(self, status: int, headers: list[tuple[str, str]], content: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in _HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            length = {k.lower(): v for k, v in headers}.get("content-length")
            if self.command == "HEAD" and length is not None:
                self.send_header("Content-Length", length)
            else:
                self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _handle(self) -> None:
            path = self.path.split("?", 1)[0]
            body = self._body()
            fault = proxy.take(self.command, path)
            action = fault.action if fault else "forward"
            with proxy.lock:
                proxy.seen.append((self.command, path, action))
            if fault is None or fault.action == "before":
                if fault is not None and fault.hook is not None:
                    fault.hook()
                self._send(*self._forward(body))
            elif fault.action == "status":
                message = f"injected fault: {path} 404 not found"
                error = {"errors": [{"code": "UNKNOWN", "message": message}]}
                self._send(fault.status, [("Content-Type", "application/json")],
                           json.dumps(error).encode())  # fmt: skip
            elif fault.action == "hang":
                proxy.stopping.wait()
                self._drop()
            elif fault.action == "drop":
                self._drop()
            elif fault.action == "drop-after":
                self._forward(body)
                self._drop()
            elif fault.action == "cut":
                status, headers, content = self._forward(body)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in _HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(max(len(content), 2)))
                self.end_headers()
                self.wfile.write(content[: len(content) // 2])
                self._drop()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    return Handler


@contextmanager
def registry_proxy(upstream: str) -> Iterator[RegistryProxy]:
    """Run a proxy on a free 127.0.0.1 port in front of ``upstream`` (``host:port``)."""
    proxy = RegistryProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
