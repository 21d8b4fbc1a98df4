"""hello: the smallest service Conveyor's demo delivers (standard library only).

``GET /version`` answers ``{"app": "hello", "version": APP_VERSION}``, where
``APP_VERSION`` is baked into the image from the ``GIT_SHA`` build argument;
``GET /healthz`` answers ``ok``.  Anything else is a 404.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def version() -> str:
    """The version this process serves: ``APP_VERSION`` or ``dev``."""
    return os.environ.get("APP_VERSION", "dev")


def respond(path: str) -> tuple[int, str, bytes]:
    """Status, content type and body for a GET of ``path``."""
    if path == "/version":
        body = json.dumps({"app": "hello", "version": version()})
        return 200, "application/json", body.encode()
    if path == "/healthz":
        return 200, "text/plain", b"ok\n"
    return 404, "text/plain", b"not found\n"


class Handler(BaseHTTPRequestHandler):
    """Routes GET requests through :func:`respond`."""

    def do_GET(self) -> None:  # the name http.server calls
        status, content_type, body = respond(self.path.split("?", 1)[0])
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    """Serve on ``PORT`` (default 8080) on every interface until killed."""
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - inside a container
    print(f"hello {version()} listening on :{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
