"""The scan stage with ``stages.scan.image``: Trivy in a container, on real podman.

Trivy's image cannot be pulled here, so the image is a local double:
``localhost/conveyor-test/trivy-double:1`` is the base image with the Trivy
replay double (tests/doubles/trivy) as ``/usr/local/bin/trivy`` and, like
``aquasec/trivy``, ``trivy`` as its ENTRYPOINT.  Everything else is real: the
build, the tarball export, the container run by :class:`PodmanEngine` with the
scan directory mounted and the named cache volume, the report exported back,
the gate and SARIF.  The double logs the argv it received into the cache
volume, so each test also proves the volume is mounted at ``--cache-dir``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.podman import PodmanEngine
from conveyor.errors import CommandFailedError, ScanGateError
from conveyor.pipeline.graph import Outputs
from conveyor.stages.build import run_build
from conveyor.stages.context import DeliveryContext
from conveyor.stages.scan import run_scan

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(120)]

TESTS = Path(__file__).parents[1]
TRIVY_DOUBLE = TESTS / "doubles" / "trivy"
REPORTS = TESTS / "scan" / "resources" / "trivy"
DOUBLE_IMAGE = "localhost/conveyor-test/trivy-double:1"
ALL = "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"
LOG_NAME = "double.jsonl"


@pytest.fixture(scope="session")
def trivy_double_image(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Trivy replay double in an image whose entrypoint is ``trivy`` (as aquasec/trivy's)."""
    context = tmp_path_factory.mktemp("trivy-double-image")
    shutil.copy2(TRIVY_DOUBLE, context / "trivy")
    (context / "Containerfile").write_text(
        f"FROM {base_image}\n"
        "COPY trivy /usr/local/bin/trivy\n"
        "RUN chmod 0755 /usr/local/bin/trivy\n"
        'ENTRYPOINT ["trivy"]\n'
    )
    built = subprocess.run(
        ["podman", "build", "-q", "--pull=never", "-t", DOUBLE_IMAGE, str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return DOUBLE_IMAGE


@dataclass(frozen=True)
class App:
    """A tiny app (FROM scratch) whose scan runs in the Trivy double's image."""

    root: Path
    cache: str

    def context(self, sha: str) -> DeliveryContext:
        config = load_config(self.root / "conveyor.toml", env={})
        return DeliveryContext(
            config, PodmanEngine(), sha, self.root / ".conveyor" / sha, today=date(2025, 6, 1)
        )

    def sent(self) -> list[list[str]]:
        """Every argv the double received, from the log it wrote into the cache volume."""
        mountpoint = subprocess.run(
            ["podman", "volume", "inspect", "--format", "{{.Mountpoint}}", self.volume],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        log = Path(mountpoint) / LOG_NAME
        return [json.loads(line)["argv"] for line in log.read_text().splitlines()]

    @property
    def volume(self) -> str:
        return f"conveyor-cache-{self.cache}"


def scan_config(image: str, cache: str, report: str | None) -> str:
    env = {"TRIVY_DOUBLE_LOG": f"/root/.cache/trivy/{LOG_NAME}"}
    if report is not None:
        env["TRIVY_DOUBLE_REPORT"] = f"/scan/{report}"
    pairs = ", ".join(f'{key} = "{value}"' for key, value in env.items())
    return (
        "[stages.scan]\n"
        f'image = "{image}"\n'
        f'cache = "{cache}"\n'
        f'timeout = "10m"\n'
        f"env = {{ {pairs} }}\n"
    )


def make_app(root: Path, image: str, report: str | None) -> App:
    cache = f"trivy-db-test-{uuid.uuid4().hex[:8]}"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    (root / "payload").write_text("scanned\n")
    (root / "conveyor.toml").write_text(
        '[app]\nname = "scanned"\n\n'
        '[registry]\nhost = "127.0.0.1:5000"\nrepository = "stages/scanned"\n\n'
        + scan_config(image, cache, report)
    )
    return App(root, cache)


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[list[App]]:
    """Apps made by a test; their cache volumes and built images are removed afterwards."""
    made: list[App] = []
    yield made
    for app in made:
        subprocess.run(
            ["podman", "volume", "rm", "-f", app.volume], check=False, capture_output=True
        )
    listed = subprocess.run(
        ["podman", "images", "-q", "--filter", "reference=localhost/conveyor/scanned"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if listed:
        subprocess.run(["podman", "rmi", "-f", *listed], check=False, capture_output=True)


def new_sha() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex[:8]


async def build_and_scan(app: App, sha: str, report: str | None) -> Outputs:
    ctx = app.context(sha)
    built = await run_build(ctx, {})
    if report is not None:
        # The double reads the recorded report from the mounted scan directory.
        shutil.copy(REPORTS / report, ctx.stage_dir("scan") / report)
    return await run_scan(ctx, {"build": built})


async def test_trivy_runs_in_its_image_on_the_mounted_tarball_and_gates_the_report(
    tmp_path: Path, trivy_double_image: str, apps: list[App]
) -> None:
    app = make_app(tmp_path / "app", trivy_double_image, "alpine-310.json")
    apps.append(app)
    sha = new_sha()

    outputs = await build_and_scan(app, sha, "alpine-310.json")

    # No "trivy" first: podman ran the command as the whole argv, not after the
    # image's ENTRYPOINT (the double refuses an unknown command "trivy").
    assert app.sent() == [
        [
            "image",
            "--input",
            "/scan/image.tar",
            "--format",
            "json",
            "--output",
            "/scan/trivy.json",
            "--quiet",
            "--scanners",
            "vuln,secret",
            "--severity",
            ALL,
            "--timeout",
            "600s",
            "--cache-dir",
            "/root/.cache/trivy",
        ]
    ]
    scan_dir = app.root / ".conveyor" / sha / "scan"
    assert outputs["report"] == str(scan_dir / "trivy.json")
    assert outputs["blocking"] == "0"
    assert outputs["count.medium"] == "4"
    assert outputs["count.critical"] == "0"
    report = json.loads((scan_dir / "trivy.json").read_text())
    assert report == json.loads((REPORTS / "alpine-310.json").read_text())
    assert outputs["sarif"] == str(scan_dir / "trivy.sarif")
    sarif = json.loads((scan_dir / "trivy.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == [
        "CVE-2019-1549",
        "CVE-2019-1551",
        "CVE-2019-1549",
        "CVE-2019-1551",
    ]
    summary = (scan_dir / "summary.txt").read_text().splitlines()
    assert summary[1] == "Gate (fail on CRITICAL, HIGH): passed"
    assert not (scan_dir / "image.tar").exists()


async def test_a_critical_finding_fails_the_gate_and_the_cache_volume_is_reused(
    tmp_path: Path, trivy_double_image: str, apps: list[App]
) -> None:
    app = make_app(tmp_path / "app", trivy_double_image, "debian-buster.json")
    apps.append(app)
    sha = new_sha()

    for _ in range(2):
        with pytest.raises(ScanGateError) as caught:
            await build_and_scan(app, sha, "debian-buster.json")
        assert caught.value.blocking == ("CVE-2019-18224",)
        assert caught.value.image == f"localhost/conveyor/scanned:{sha}"

    # Both runs logged into the same volume: Trivy's DB would be there for the second.
    assert len(app.sent()) == 2
    scan_dir = app.root / ".conveyor" / sha / "scan"
    sarif = json.loads((scan_dir / "trivy.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == [
        "CVE-2019-18276",
        "CVE-2019-18224",
    ]
    summary = (scan_dir / "summary.txt").read_text().splitlines()
    assert summary[1] == "Gate (fail on CRITICAL, HIGH): FAILED, 1 blocking"
    assert not (scan_dir / "image.tar").exists()


async def test_a_failing_trivy_is_a_command_failure_with_its_stderr(
    tmp_path: Path, trivy_double_image: str, apps: list[App]
) -> None:
    app = make_app(tmp_path / "app", trivy_double_image, report=None)
    apps.append(app)
    sha = new_sha()

    with pytest.raises(CommandFailedError) as caught:
        await build_and_scan(app, sha, report=None)

    assert caught.value.exit_code == 1
    assert caught.value.command[:4] == ("trivy", "image", "--input", "/scan/image.tar")
    assert "TRIVY_DOUBLE_REPORT names no recorded report" in caught.value.stderr
    assert "TRIVY_DOUBLE_REPORT names no recorded report" in str(caught.value)
    assert caught.value.hint is not None
    assert "TRIVY_DB_REPOSITORY" in caught.value.hint
    scan_dir = app.root / ".conveyor" / sha / "scan"
    assert not (scan_dir / "trivy.json").exists()
    assert not (scan_dir / "image.tar").exists()
