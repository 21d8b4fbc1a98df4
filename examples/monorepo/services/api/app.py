"""api: the monorepo example's JSON service (standard library only).

``GET /version`` answers ``{"app": "api", "version": APP_VERSION}`` (the
``GIT_SHA`` build argument), ``GET /items`` a short list; anything else 404.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS = [{"id": 1, "name": "conveyor belt"}, {"id": 2, "name": "roller"}]


def respond(path: str) -> tuple[int, bytes]:
    """Status and JSON body for a GET of ``path``."""
    if path == "/version":
        version = os.environ.get("APP_VERSION", "dev")
        return 200, json.dumps({"app": "api", "version": version}).encode()
    if path == "/items":
        return 200, json.dumps(ITEMS).encode()
    return 404, b'{"error": "not found"}'


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        status, body = respond(self.path.split("?", 1)[0])
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 - in a container
