"""The ``verify`` stage: after the manifest commit, probe the environment until it serves the SHA.

The environment is a real HTTP server on 127.0.0.1 standing in for the
cluster's service (there is no cluster here): it serves an older version
first and the new one once "rolled out", as Flux or Argo CD would make it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from e2e.conftest import World, git

OLD = "0" * 40


@contextmanager
def environment(version_after: float, new: list[str]) -> Iterator[str]:
    """Serve ``{"version": OLD}`` until ``version_after`` seconds passed, then ``new[0]``."""
    started = time.monotonic()
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rolled_out = new and time.monotonic() - started >= version_after
            body = json.dumps({"app": "hello", "version": new[0] if rolled_out else OLD})
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/version"
    finally:
        server.shutdown()
        server.server_close()
        assert seen, "the verify stage never asked the environment"


def test_verify_waits_for_the_environment_to_serve_the_new_version(world: World) -> None:
    sha = world.commit_app("verify rolls out")
    new: list[str] = [sha]
    with environment(version_after=3.0, new=new) as url:
        done = world.run(
            "alpine-310.json",
            env={"CONVEYOR_SMOKE__STAGING__URL": url, "CONVEYOR_SMOKE__STAGING__TIMEOUT": "60s"},
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "manifest: success" in done.stdout
    assert "verify: success" in done.stdout
    assert f"url={url}" in done.stdout


def test_verify_fails_with_exit_9_when_the_version_never_arrives(world: World) -> None:
    sha = world.commit_app("verify never rolls out")
    with environment(version_after=0.0, new=[]) as url:
        done = world.run(
            "alpine-310.json",
            env={"CONVEYOR_SMOKE__STAGING__URL": url, "CONVEYOR_SMOKE__STAGING__TIMEOUT": "4s"},
        )
    assert done.returncode == 9, done.stdout + done.stderr
    assert "manifest: success" in done.stdout
    assert "verify: failed" in done.stdout
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error")]
    assert (
        f"error in stage verify: {url} did not serve version {sha!r}"
        f" (any 2xx with version {sha!r}) within" in line
    )
    assert "hint: check the deployment in the cluster (Flux/Argo CD status)" in done.stderr
    # the commit stays: the manifest repository is the deployment record
    checkout = world.manifest_checkout()
    assert sha[:12] in git("log", "-1", "--format=%s", cwd=checkout)
