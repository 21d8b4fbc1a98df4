"""Session fixtures shared by every area: the local base image and a real registry."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ports import free_port

# What a CI job says changed would select stages in every test's own repository:
# the tests that need it set it themselves.
for _name in (
    "CONVEYOR_CHANGED_SINCE",
    "CI_MERGE_REQUEST_DIFF_BASE_SHA",
    "CI_COMMIT_BEFORE_SHA",
    "GITHUB_BASE_REF",
    "GITHUB_EVENT_PATH",
):
    os.environ.pop(_name, None)

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/conveyor/python:3.11"
REGISTRY_SCRIPT = REPO / "scripts" / "registry.sh"
SERVE_PY = REPO / "tests" / "resources" / "service" / "serve.py"
LOOPBACK_PORT = 5000
REGISTRY_BASE_IMAGE = f"127.0.0.1:{LOOPBACK_PORT}/conveyor/python:3.11"
"""The base image by registry address, as examples/hello names it (scripts/setup.sh pushes it)."""


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
def service_image(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local image of a real HTTP server: tests/resources/service/serve.py on the base image.

    Its command serves ``$GREETING`` on port 8000 (``python3 /srv/serve.py PORT``
    serves on another).  A name of this session's own (the layers are cached),
    removed after it: another session's removal never takes it away.
    """
    containerfile = (
        f"FROM {base_image}\n"
        "COPY serve.py /srv/serve.py\n"
        'CMD ["python3", "/srv/serve.py", "8000"]\n'
    )
    digest = hashlib.sha256((containerfile + SERVE_PY.read_text()).encode()).hexdigest()
    tag = f"localhost/conveyor-test/service:{digest[:12]}-{uuid.uuid4().hex[:8]}"
    context = tmp_path_factory.mktemp("service-image")
    shutil.copy2(SERVE_PY, context / "serve.py")
    (context / "Containerfile").write_text(containerfile)
    built = subprocess.run(
        ["podman", "build", "-q", "--pull=never", "-t", tag, str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if built.returncode != 0:
        pytest.fail(f"the service image did not build: {built.stderr.strip()}")
    yield tag
    subprocess.run(["podman", "rmi", "-f", tag], check=False, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def registry_base_image(base_image: str) -> str:
    """The base image in the loopback registry on 127.0.0.1:5000, where the example pulls it.

    Another registry than the one a test publishes to (``registry``, a free
    port).  The registry is (re)started from its storage when it is down --
    scripts/setup.sh made both -- so a reboot between setup and the tests is
    no failure; an image that is not there is.
    """
    cache = Path(os.environ.get("CONVEYOR_CACHE_DIR", "/var/cache/conveyor"))
    started = subprocess.run(
        [str(REGISTRY_SCRIPT), "start", str(LOOPBACK_PORT), str(cache / "registry")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if started.returncode != 0:
        pytest.fail(f"the loopback registry did not start: {started.stderr.strip()}")
    found = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{REGISTRY_BASE_IMAGE}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if found.returncode != 0 or "config" not in json.loads(found.stdout or "{}"):
        pytest.fail(
            f"{REGISTRY_BASE_IMAGE} is not in the loopback registry: run scripts/setup.sh "
            f"(as root) to push {base_image} there ({found.stderr.strip()})"
        )
    return REGISTRY_BASE_IMAGE


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
