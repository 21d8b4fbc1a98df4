"""A custom stage's services through ``conveyor run`` on real podman.

The service is a real HTTP server in a locally built image (the
``service_image`` fixture); the stage's container reaches it by its name.
Afterwards -- after success, and after a SIGTERM in the middle of the stage
-- no container of the run and no network of its own is left.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from e2e.conftest import World, conveyor_executable
from e2e.test_example_pipeline import statuses, summary

pytestmark = pytest.mark.timeout(300)

IMAGE = "127.0.0.1:5000/conveyor/python:3.11"


def add_service_stage(world: World, service_image: str, script: str, nonce: str) -> None:
    config = world.app / "conveyor.toml"
    config.write_text(
        config.read_text()
        + f"""
[stages.reach-web]
image = "{IMAGE}"
script = "{script}"

[[stages.reach-web.services]]
name = "web"
image = "{service_image}"
port = 8000
env = {{ GREETING = "{nonce}" }}
"""
    )


def podman_json(*args: str) -> list[dict[str, object]]:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=60
    )
    return json.loads(done.stdout or "[]") if done.returncode == 0 else []


def containers_mentioning(marker: str) -> list[str]:
    """Conveyor-labelled containers (running or not) whose inspect output names ``marker``."""
    listed = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", "label=io.conveyor.engine"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    found = podman_json("inspect", *listed) if listed else []
    return [str(c["Name"]) for c in found if marker in json.dumps(c)]


def networks_of(names: list[str]) -> set[str]:
    """The networks the containers ``names`` are attached to."""
    networks: set[str] = set()
    for container in podman_json("inspect", *names):
        settings = container.get("NetworkSettings")
        assert isinstance(settings, dict)
        networks |= set(settings.get("Networks") or {})
    return networks


def network_exists(name: str) -> bool:
    return subprocess.run(["podman", "network", "exists", name], check=False).returncode == 0


def test_a_custom_stage_reaches_its_service_by_name(world: World, service_image: str) -> None:
    nonce = uuid.uuid4().hex
    fetch = (
        "import urllib.request; "
        "print('web says', urllib.request.urlopen('http://web:8000/').read().decode())"
    )
    add_service_stage(world, service_image, f'python3 -c \\"{fetch}\\"', nonce)
    world.commit_app("integration with a service")

    done = world.run("alpine-310.json", "--only", "reach-web")

    assert done.returncode == 0, done.stdout + done.stderr
    assert statuses(summary(world.app))["reach-web"][0] == "success"
    logs = sorted((world.app / ".conveyor" / "runs").glob("*/artifacts/reach-web/output.log"))
    assert f"web says {nonce}" in logs[-1].read_text()
    assert containers_mentioning(nonce) == []


def test_a_sigterm_during_the_stage_removes_its_service_and_network(
    world: World, service_image: str, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex
    add_service_stage(world, service_image, "sleep 120", nonce)
    sha = world.commit_app("a long integration stage")
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    run = subprocess.Popen(
        [str(conveyor_executable()), "run", "--engine", "podman", "--output", "plain",
         "--only", "reach-web"],
        cwd=world.app, env={**world.env("alpine-310.json"), "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # the service (its env names the nonce), then the stage's container (CONVEYOR_SHA)
        while not containers_mentioning(nonce) or not containers_mentioning(sha):
            assert time.monotonic() < deadline, "the stage's containers never started"
            time.sleep(0.2)
        time.sleep(1)  # the stage's command is running
        running = containers_mentioning(nonce) + containers_mentioning(sha)
        networks = networks_of(running)
        assert len(networks) == 1  # the run's own network, not podman's default
        (network,) = networks
        assert network.startswith("conveyor-net-")
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()

    assert run.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Traceback" not in stderr
    assert statuses(summary(world.app))["reach-web"][0] == "cancelled"
    assert containers_mentioning(nonce) == []
    assert not network_exists(network)
