"""The Trivy adapter: scan an image tarball with Trivy, on this machine or in a container.

The one place that starts Trivy, in one of two ways: the local executable as
a process (:func:`scan_tarball`), or Trivy's image through the engine port
(:func:`scan_in_container`), with the tarball's directory mounted at
:data:`CONTAINER_WORKDIR` and Trivy's database in a cache volume at
:data:`CONTAINER_CACHE_DIR`.  Both run::

    trivy image --input IMAGE.tar --format json --output OUT/trivy.json --quiet
          --scanners vuln,secret --severity UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL
          --timeout 1800s [--ignore-unfixed] [--cache-dir DIR]

then parses the JSON, applies the gate and writes SARIF next to it.  Trivy is
asked for every severity (unless the caller narrows it) because the gate, not
Trivy, decides what blocks: the SARIF upload and the summary still show the
findings below the threshold.  ``--timeout`` follows the stage's timeout since
Trivy's own default (5 minutes) is shorter than a large image may need.
Trivy's exit code is left at its default (0 when findings exist), so a
non-zero exit always means the scan itself failed.

One function builds that command line for both (:func:`trivy_argv`), one
parses, gates and writes SARIF for both (:func:`conclude`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePath, PurePosixPath

import anyio
import anyio.to_thread

from conveyor.config.models import SEVERITIES, ScanStageConfig
from conveyor.engines.port import CacheMount, Engine, RunSpec
from conveyor.errors import CommandFailedError, ToolMissingError
from conveyor.pipeline.toolcalls import tool_call
from conveyor.scan.gate import GateResult, evaluate
from conveyor.scan.report import ScanReport, load_report
from conveyor.scan.sarif import write_sarif
from conveyor.scan.summary import render_summary
from conveyor.secrets import Redactor

SCANNERS = ("vuln", "secret")
JSON_NAME = "trivy.json"
TARBALL_NAME = "image.tar"
"""The image archive's name in the scan directory."""
CONTAINER_WORKDIR = "/scan"
"""Where the tarball's directory is mounted in Trivy's container (its working directory)."""
CONTAINER_CACHE_DIR = "/root/.cache/trivy"
"""Trivy's cache (vulnerability DB) in its container: the cache volume's mount point.

Trivy's own default for root, the user of the ``aquasec/trivy`` image; passed
as ``--cache-dir`` anyway so the mount and Trivy always agree.
"""
FAILURE_HINT = (
    "read Trivy's message above; a DB download failure needs network access to "
    "Trivy's DB, a mirror (TRIVY_DB_REPOSITORY in stages.scan.env) or a pre-filled cache"
)
INSTALL_HINT = (
    "install Trivy (https://trivy.dev/latest/getting-started/installation/) "
    "or set stages.scan.trivy to the path of its executable"
)


@dataclass(frozen=True)
class ScanOutcome:
    """What a scan produced.

    Attributes:
        report: The parsed Trivy report.
        gate: The gate's decision; ``gate.error(image)`` is what to raise.
        json_path: Trivy's JSON report.
        sarif_path: The SARIF 2.1.0 report written from it.
    """

    report: ScanReport
    gate: GateResult
    json_path: Path
    sarif_path: Path

    def summary(self, *, limit: int = 10) -> str:
        """The one-screen text summary of the scan."""
        return render_summary(self.report, self.gate, limit=limit)


def trivy_argv(
    executable: str,
    tarball: PurePath,
    output: PurePath,
    options: ScanStageConfig,
    *,
    cache_dir: PurePath | None = None,
    severities: Sequence[str] = SEVERITIES,
) -> list[str]:
    """The command line that scans an image tarball into a JSON report.

    Args:
        executable: The ``trivy`` executable (name on PATH or a path).
        tarball: The image as a ``docker save``/OCI archive (a path where
            Trivy runs: on this machine or in its container).
        output: Where Trivy writes its JSON report (likewise).
        options: The scan stage's options (``ignore_unfixed``, ``timeout``).
        cache_dir: Trivy's cache (vulnerability DB); Trivy's default when None.
        severities: Severities Trivy reports; all by default, the gate decides.

    Returns:
        The argument vector, executable first.
    """
    argv = [
        executable,
        "image",
        "--input",
        str(tarball),
        "--format",
        "json",
        "--output",
        str(output),
        "--quiet",
        "--scanners",
        ",".join(SCANNERS),
        "--severity",
        ",".join(severities),
        "--timeout",
        f"{max(1, round(options.timeout))}s",
    ]
    if options.ignore_unfixed:
        argv.append("--ignore-unfixed")
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    return argv


async def scan_tarball(
    tarball: Path,
    out_dir: Path,
    options: ScanStageConfig,
    *,
    executable: str,
    cache_dir: Path | None = None,
    severities: Sequence[str] = SEVERITIES,
    today: date | None = None,
) -> ScanOutcome:
    """Scan an image tarball with Trivy, gate the findings and write SARIF.

    Args:
        tarball: The image archive to scan.
        out_dir: Directory for ``trivy.json`` and the SARIF file
            (``options.sarif``, relative to ``out_dir`` unless absolute).
        options: The scan stage's options.
        executable: The ``trivy`` executable (usually ``options.trivy``).
        cache_dir: Trivy's cache directory, e.g. one kept between CI runs.
        severities: Severities Trivy reports; all by default.
        today: The date ignore entries are checked against; today by default.

    Returns:
        The report, the gate's decision and the paths written.

    Raises:
        ToolMissingError: The executable does not exist or cannot be run.
        CommandFailedError: Trivy exited non-zero (argv, exit code, stderr tail).
        ScanReportError: Trivy's output is missing or not a SchemaVersion 2 report.
    """
    await anyio.Path(out_dir).mkdir(parents=True, exist_ok=True)
    json_path = out_dir / JSON_NAME
    await anyio.Path(json_path).unlink(missing_ok=True)  # never gate a previous run's report
    argv = trivy_argv(
        executable, tarball, json_path, options, cache_dir=cache_dir, severities=severities
    )
    try:
        with tool_call(argv) as exited:
            process = await anyio.run_process(argv, check=False, env={**os.environ, **options.env})
            exited(process.returncode)
    except FileNotFoundError as exc:
        raise ToolMissingError(executable, hint=INSTALL_HINT) from exc
    except PermissionError as exc:
        raise ToolMissingError(
            executable, hint=f"{executable} is not executable; {INSTALL_HINT}"
        ) from exc
    if process.returncode != 0:
        stderr = Redactor()(process.stderr.decode("utf-8", errors="replace"))
        raise CommandFailedError(argv, process.returncode, stderr, hint=FAILURE_HINT)
    return await conclude(json_path, out_dir / options.sarif, options, today=today)


def container_spec(
    tarball: Path,
    options: ScanStageConfig,
    *,
    image: str,
    severities: Sequence[str] = SEVERITIES,
    ca_bundle: Path | None = None,
) -> RunSpec:
    """What the engine runs to scan ``tarball`` in Trivy's image.

    The tarball's directory is mounted at :data:`CONTAINER_WORKDIR`; Trivy
    writes ``trivy.json`` there, and it is exported back into the same
    directory.  The command starts with ``trivy``: engines run it as the whole
    argument vector, never after the image's entrypoint.

    Args:
        tarball: The image archive; its directory becomes the container's source.
        options: The scan stage's options (``cache`` names the DB volume,
            ``env`` is Trivy's environment).
        image: The Trivy image, e.g. ``aquasec/trivy:0.69.1``.
        severities: Severities Trivy reports; all by default.
        ca_bundle: Extra CA certificates for Trivy's DB download.

    Returns:
        The run specification.
    """
    workdir = PurePosixPath(CONTAINER_WORKDIR)
    argv = trivy_argv(
        "trivy",
        workdir / tarball.name,
        workdir / JSON_NAME,
        options,
        cache_dir=PurePosixPath(CONTAINER_CACHE_DIR),
        severities=severities,
    )
    return RunSpec(
        image=image,
        command=tuple(argv),
        source=tarball.parent,
        workdir=CONTAINER_WORKDIR,
        env=dict(options.env),
        caches=(CacheMount(options.cache, CONTAINER_CACHE_DIR),),
        outputs=(JSON_NAME,),
        export_dir=tarball.parent,
        ca_bundle=ca_bundle,
    )


async def scan_in_container(
    engine: Engine,
    tarball: Path,
    options: ScanStageConfig,
    *,
    image: str,
    severities: Sequence[str] = SEVERITIES,
    ca_bundle: Path | None = None,
    today: date | None = None,
) -> ScanOutcome:
    """Scan an image tarball with Trivy's image through ``engine``, gate it and write SARIF.

    ``trivy.json`` and the SARIF file are written next to the tarball.

    Args:
        engine: The container engine.
        tarball: The image archive to scan.
        options: The scan stage's options.
        image: The Trivy image (usually ``options.image``).
        severities: Severities Trivy reports; all by default.
        ca_bundle: Extra CA certificates for Trivy's DB download.
        today: The date ignore entries are checked against; today by default.

    Returns:
        The report, the gate's decision and the paths written.

    Raises:
        CommandFailedError: Trivy exited non-zero (argv, exit code, stderr tail).
        ScanReportError: Trivy's output is missing or not a SchemaVersion 2 report.
        EngineError: the engine could not run the container.
    """
    spec = container_spec(tarball, options, image=image, severities=severities, ca_bundle=ca_bundle)
    json_path = tarball.parent / JSON_NAME
    await anyio.Path(json_path).unlink(missing_ok=True)  # never gate a previous run's report
    result = await engine.run(spec)
    if result.exit_code != 0:
        raise CommandFailedError(spec.command, result.exit_code, result.stderr, hint=FAILURE_HINT)
    return await conclude(json_path, tarball.parent / options.sarif, options, today=today)


async def conclude(
    json_path: Path, sarif_path: Path, options: ScanStageConfig, *, today: date | None = None
) -> ScanOutcome:
    """Parse Trivy's JSON report, apply the gate and write SARIF.

    Args:
        json_path: Trivy's JSON report.
        sarif_path: Where the SARIF 2.1.0 report goes.
        options: The scan stage's options (``fail_on``, ``ignore_unfixed``, ``ignore``).
        today: The date ignore entries are checked against; today by default.

    Returns:
        The report, the gate's decision and the paths.

    Raises:
        ScanReportError: the report is missing or not a SchemaVersion 2 report.
    """
    return await anyio.to_thread.run_sync(
        _conclude, json_path, sarif_path, options, today or date.today()
    )


def _conclude(
    json_path: Path, sarif_path: Path, options: ScanStageConfig, today: date
) -> ScanOutcome:
    """Blocking file work of :func:`conclude`, run in a worker thread."""
    report = load_report(json_path)
    gate = evaluate(report, options, today=today)
    write_sarif(report, sarif_path)
    return ScanOutcome(report=report, gate=gate, json_path=json_path, sarif_path=sarif_path)
