"""A tiny HTTP server for service tests: answers every GET with $GREETING on the given port."""

import http.server
import os
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
BODY = os.environ.get("GREETING", "hello").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


print(f"serving on {PORT}", flush=True)
# every interface: it is reached by name from another container
http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()  # noqa: S104
