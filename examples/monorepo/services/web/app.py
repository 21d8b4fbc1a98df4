"""web: the monorepo example's front page (standard library only).

``GET /`` answers a small HTML page, ``GET /version``
``{"app": "web", "version": APP_VERSION}`` (the ``GIT_SHA`` build argument).
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def respond(path: str) -> tuple[int, str, bytes]:
    """Status, content type and body for a GET of ``path``."""
    version = os.environ.get("APP_VERSION", "dev")
    if path == "/version":
        return 200, "application/json", json.dumps({"app": "web", "version": version}).encode()
    if path == "/":
        page = f"<!doctype html><title>shop</title><h1>shop</h1><p>web {version}</p>\n"
        return 200, "text/html; charset=utf-8", page.encode()
    return 404, "text/plain", b"not found\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        status, content_type, body = respond(self.path.split("?", 1)[0])
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 - in a container
