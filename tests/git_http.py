"""A real smart-HTTP git remote for tests: ``git http-backend`` behind basic auth on 127.0.0.1.

Shared by the GitOps tests (tokens never land in .git/config or messages),
the end-to-end secret tests and the fault tests.  Only the configured token
gets in; every Authorization header and request line received is recorded.
``stall(method, path) -> seconds`` makes the server slow or hang (``math.inf``:
it accepts and never answers, until the server stops).
"""

from __future__ import annotations

import base64
import math
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class GitHttpRemote:
    """Where the bare repository is served, the token it accepts, what it was sent."""

    url: str
    token: str
    user: str = "x-access-token"
    authorizations: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every request, recorded when it arrives (before any stall)."""

    @property
    def expected(self) -> str:
        pair = f"{self.user}:{self.token}".encode()
        return "Basic " + base64.b64encode(pair).decode()


@contextmanager
def serve_git_http(
    bare: Path, token: str, *, stall: Callable[[str, str], float] | None = None
) -> Iterator[GitHttpRemote]:
    """Serve ``bare`` over smart HTTP; only ``token`` (basic auth) gets in.

    Args:
        stall: Seconds to wait before answering a request (method, path);
            ``math.inf`` never answers.
    """
    state = GitHttpRemote(url="", token=token)
    stopped = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self.serve()

        def do_POST(self) -> None:
            self.serve()

        def serve(self) -> None:
            header = self.headers.get("Authorization", "")
            state.authorizations.append(header)
            state.requests.append((self.command, self.path))
            delay = stall(self.command, self.path) if stall is not None else 0.0
            if delay:
                stopped.wait(None if math.isinf(delay) else delay)
                if stopped.is_set():
                    return
            if header != state.expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = self.body()
            path, _, query = self.path.partition("?")
            env = {
                "PATH": os.environ["PATH"],
                "GIT_PROJECT_ROOT": str(bare.parent),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "REMOTE_USER": state.user,
                "REMOTE_ADDR": "127.0.0.1",
            }
            out = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            ).stdout
            head, _, content = out.partition(b"\r\n\r\n")
            status, headers = 200, []
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

        def body(self) -> bytes:
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
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/{bare.name}"
    try:
        yield state
    finally:
        stopped.set()
        httpd.shutdown()
        httpd.server_close()
