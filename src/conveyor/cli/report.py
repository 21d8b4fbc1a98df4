"""``conveyor report``: a run's reports in the formats a CI system reads.

``conveyor report gitlab-container-scanning trivy.json --output FILE`` turns
the scan stage's Trivy JSON into GitLab's container-scanning report (the
GitLab component runs it after every run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Convert a run's reports for a CI system.", no_args_is_help=True)


@app.command("gitlab-container-scanning")
def gitlab_container_scanning(
    trivy_json: Annotated[
        Path, typer.Argument(help="Trivy's JSON report (the scan stage's scan/trivy.json).")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="PATH", help="Where to write the GitLab report."),
    ] = Path("gl-container-scanning-report.json"),
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            metavar="REF",
            help="The image reference to show (default: what Trivy scanned).",
        ),
    ] = None,
) -> None:
    """Write GitLab's container-scanning report (schema 15.2.4) from a Trivy JSON report."""
    from conveyor.errors import ScanReportError
    from conveyor.scan.gitlab import write_container_scanning_report
    from conveyor.scan.report import load_report

    report = load_report(trivy_json)
    try:
        count = write_container_scanning_report(report, output, image=image)
    except OSError as exc:
        raise ScanReportError(output, f"cannot be written: {exc.strerror or exc}") from exc
    typer.echo(f"wrote {output}: {count} vulnerabilities in GitLab's container-scanning format")
