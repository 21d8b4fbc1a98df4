"""Session fixtures shared by every area: the local base image and a real registry."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/conveyor/python:3.11"
REGISTRY_SCRIPT = REPO / "scripts" / "registry.sh"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def base_image() -> str:
    """The debootstrap-built Python image every container test starts from."""
    try:
        found = subprocess.run(
            ["podman", "image", "exists", BASE_IMAGE], check=False, timeout=60
        ).returncode
    except FileNotFoundError:
        pytest.fail("podman is not installed: run scripts/setup.sh (as root) first")
    if found != 0:
        pytest.fail(f"image {BASE_IMAGE} is missing: run scripts/setup.sh (as root) to build it")
    return BASE_IMAGE


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OCI registry (docker-registry) on a free 127.0.0.1 port; yields ``host:port``."""
    directory = tmp_path_factory.mktemp("registry")
    port = str(free_port())
    started = subprocess.run(
        [str(REGISTRY_SCRIPT), "start", port, str(directory)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if started.returncode != 0:
        pytest.fail(f"the test registry did not start: {started.stderr.strip()}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            [str(REGISTRY_SCRIPT), "stop", port, str(directory)], check=False, timeout=60
        )
