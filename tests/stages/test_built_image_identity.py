"""Scan and smoke take the image the build stage built, not whatever holds its local name now.

The build stage names its image ``localhost/conveyor/<app>:<sha>``; another
pipeline of the same commit on this host builds under that same name.  Here
that second build happens for real between build and scan/smoke, on podman,
and serves (and is) another image; the stages must still scan and serve the
first one.  Trivy cannot run here: the scan's ``trivy`` is the replay double
(tests/doubles/trivy) behind a small wrapper that first records which image
config the tarball it was given holds.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.podman import PodmanEngine
from conveyor.stages.build import run_build
from conveyor.stages.context import DeliveryContext
from conveyor.stages.scan import run_scan
from conveyor.stages.smoke import run_smoke

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(180)]

TESTS = Path(__file__).parents[1]
HELLO = TESTS.parent / "examples" / "hello"
TRIVY_DOUBLE = TESTS / "doubles" / "trivy"
REPORT = TESTS / "scan" / "resources" / "trivy" / "alpine-310.json"
WRAPPER = f"""#!{sys.executable}
import json, os, sys, tarfile
args = sys.argv[1:]
with tarfile.open(args[args.index("--input") + 1]) as archive:
    manifest = json.load(archive.extractfile("manifest.json"))
with open(os.environ["SCANNED_RECORD"], "w") as record:
    record.write(manifest[0]["Config"])
os.execv(sys.executable, [sys.executable, {str(TRIVY_DOUBLE)!r}, *args])
"""


@pytest.fixture
def app_name() -> Iterator[str]:
    """A unique app name; its local images are removed afterwards."""
    name = f"identity-{uuid.uuid4().hex[:8]}"
    yield name
    listed = subprocess.run(
        ["podman", "images", "-q", "--filter", f"reference=localhost/conveyor/{name}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if listed:
        subprocess.run(["podman", "rmi", "-f", *listed], check=False, capture_output=True)


def make_context(root: Path, name: str, base_image: str, sha: str) -> DeliveryContext:
    root.mkdir()
    for file in ("Dockerfile", "app.py"):
        (root / file).write_text((HELLO / file).read_text())
    trivy = root / "trivy"
    trivy.write_text(WRAPPER)
    trivy.chmod(0o755)
    (root / "conveyor.toml").write_text(
        f'[app]\nname = "{name}"\n\n'
        f'[app.build_args]\nBASE_IMAGE = "{base_image}"\n\n'
        '[registry]\nhost = "127.0.0.1:5000"\nrepository = "stages/identity"\n\n'
        f'[stages.scan]\ntrivy = "{trivy}"\n'
        f'env = {{ TRIVY_DOUBLE_REPORT = "{REPORT}", SCANNED_RECORD = "{root / "scanned"}" }}\n\n'
        '[stages.smoke]\nport = 8080\npath = "/version"\ndeadline = "15s"\npasses = 1\n'
    )
    config = load_config(root / "conveyor.toml", env={})
    return DeliveryContext(config, PodmanEngine(), sha, root / ".conveyor" / sha)


def build_under_the_same_name(context: Path, base_image: str, name: str, sha: str) -> str:
    """What another pipeline of this commit does: its own image, under this one's name."""
    built = subprocess.run(
        ["podman", "build", "-q", "--pull=never", "--build-arg", f"BASE_IMAGE={base_image}",
         "--build-arg", "GIT_SHA=another-pipelines-build", "-t", f"localhost/conveyor/{name}:{sha}",
         str(context)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return built.stdout.strip()


async def test_scan_and_smoke_use_the_built_image_after_its_name_was_retagged(
    tmp_path: Path, base_image: str, app_name: str
) -> None:
    sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    ctx = make_context(tmp_path / "app", app_name, base_image, sha)
    built = await run_build(ctx, {})
    other = build_under_the_same_name(tmp_path / "app", base_image, app_name, sha)
    assert other.removeprefix("sha256:") != built["image.id"].removeprefix("sha256:")

    scanned = await run_scan(ctx, {"build": built})
    # SmokeError unless /version serves this commit's SHA: the other build serves its own
    smoked = await run_smoke(ctx, {"build": built})

    record = (tmp_path / "app" / "scanned").read_text()
    assert record == f"{built['image.id'].removeprefix('sha256:')}.json"
    assert scanned["blocking"] == "0"
    assert int(smoked["attempts"]) >= 1
