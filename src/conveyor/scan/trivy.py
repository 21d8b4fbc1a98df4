"""The Trivy adapter: scan an image tarball with the ``trivy`` executable.

The one place that starts Trivy.  It runs::

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import anyio
import anyio.to_thread

from conveyor.config.models import SEVERITIES, ScanStageConfig
from conveyor.errors import CommandFailedError, ToolMissingError
from conveyor.scan.gate import GateResult, evaluate
from conveyor.scan.report import ScanReport, load_report
from conveyor.scan.sarif import write_sarif
from conveyor.scan.summary import render_summary
from conveyor.secrets import Redactor

SCANNERS = ("vuln", "secret")
JSON_NAME = "trivy.json"
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
    tarball: Path,
    output: Path,
    options: ScanStageConfig,
    *,
    cache_dir: Path | None = None,
    severities: Sequence[str] = SEVERITIES,
) -> list[str]:
    """The command line that scans an image tarball into a JSON report.

    Args:
        executable: The ``trivy`` executable (name on PATH or a path).
        tarball: The image as a ``docker save``/OCI archive.
        output: Where Trivy writes its JSON report.
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
    sarif_path = out_dir / options.sarif
    argv = trivy_argv(
        executable, tarball, json_path, options, cache_dir=cache_dir, severities=severities
    )
    try:
        process = await anyio.run_process(argv, check=False)
    except FileNotFoundError as exc:
        raise ToolMissingError(executable, hint=INSTALL_HINT) from exc
    except PermissionError as exc:
        raise ToolMissingError(
            executable, hint=f"{executable} is not executable; {INSTALL_HINT}"
        ) from exc
    if process.returncode != 0:
        stderr = Redactor()(process.stderr.decode("utf-8", errors="replace"))
        raise CommandFailedError(
            argv,
            process.returncode,
            stderr,
            hint="read Trivy's message above; a DB download failure needs network "
            "access to Trivy's DB or a pre-filled --cache-dir",
        )
    return await anyio.to_thread.run_sync(
        _conclude, json_path, sarif_path, options, today or date.today()
    )


def _conclude(
    json_path: Path, sarif_path: Path, options: ScanStageConfig, today: date
) -> ScanOutcome:
    """Parse Trivy's report, gate it and write SARIF (blocking file work, run in a thread)."""
    report = load_report(json_path)
    gate = evaluate(report, options, today=today)
    write_sarif(report, sarif_path)
    return ScanOutcome(report=report, gate=gate, json_path=json_path, sarif_path=sarif_path)
