"""The integration stage init proposes from a compose file runs on real podman.

The compose file names a service in the loopback registry's image (the one
scripts/setup.sh pushes) with its own command; init turns it into a service
of ``[stages.integration]`` and gives the stage the app service's
environment.  Only the stage's image and script are overridden (as a user
would through the environment): the image init proposes (``python:X-slim``)
cannot be pulled here.  The service, its command, its port and the URL
naming it by its compose name are init's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conveyor.config.loader import load_config
from conveyor.scaffold import scaffold

from .conftest import GitRepo

IMAGE = "127.0.0.1:5000/conveyor/python:3.11"
CONVEYOR = Path(sys.executable).with_name("conveyor")
SERVER = (
    "import http.server as h\\n"
    "class H(h.BaseHTTPRequestHandler):\\n"
    "  def do_GET(s): s.send_response(200); s.end_headers(); s.wfile.write(s.path.encode())\\n"
    "h.HTTPServer(('', 8099), H).serve_forever()"
)
COMPOSE = f"""\
services:
  app:
    build: .
    environment:
      STATUS_URL: http://status:8099/ready
  status:
    image: {IMAGE}
    command: ["python3", "-c", "{SERVER}"]
    expose: ["8099"]
"""
PROBE = (
    'python3 -c "import os, urllib.request; '
    "print('answered', urllib.request.urlopen(os.environ['STATUS_URL']).read().decode())\""
)


def test_the_proposed_integration_stage_reaches_its_compose_service(git_repo: GitRepo) -> None:
    repo = git_repo(
        {"compose.yaml": COMPOSE, "Dockerfile": "FROM scratch\n", "tests/test_app.py": ""},
        name="app",
    )
    scaffold(repo, "github")
    stage = load_config(repo / "conveyor.toml", env={}).stages.custom["integration"]
    (service,) = stage.services
    assert (service.name, service.image, service.port) == ("status", IMAGE, 8099)
    assert service.command[:2] == ["python3", "-c"]
    assert service.command[2].startswith("import http.server as h\nclass H(")
    assert stage.env == {"STATUS_URL": "http://status:8099/ready"}

    done = subprocess.run(
        [str(CONVEYOR), "run", "--engine", "podman", "--only", "integration", "--output", "plain"],
        cwd=repo,
        env={
            **os.environ,
            "CONVEYOR_GITOPS_TOKEN": "unused-by-this-run",
            "CONVEYOR_STAGES__INTEGRATION__IMAGE": IMAGE,
            "CONVEYOR_STAGES__INTEGRATION__SCRIPT": PROBE,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (run,) = (repo / ".conveyor" / "runs").iterdir()
    summary = json.loads((run / "artifacts" / "summary.json").read_text())
    assert {s["name"]: s["status"] for s in summary["stages"]}["integration"] == "success"
    log = (run / "artifacts" / "integration" / "output.log").read_text()
    assert "answered /ready" in log  # the service, by its compose name, on its compose port
