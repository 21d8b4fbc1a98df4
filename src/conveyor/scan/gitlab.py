"""GitLab's container-scanning report from a parsed Trivy report.

GitLab shows image vulnerabilities in merge requests and the vulnerability
report only from its own security-report format
(``artifacts: reports: container_scanning:``), schema 15.x of
gitlab-org/security-products/security-report-schemas
(``dist/container-scanning-report-format.json``). This module writes that
format: every vulnerability with its identifiers (CVE, GHSA or Trivy's id),
severity, solution, links, and its location (the image, its operating
system, the package and version). Ids are stable UUIDs derived from the
finding, so the same finding keeps its id from one pipeline to the next.
Trivy's secrets and misconfigurations have no place in a container-scanning
report; the SARIF keeps them.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor import __version__
from conveyor.scan.report import Result, ScanReport, Severity, Vulnerability

SCHEMA_VERSION = "15.2.4"
SCHEMA_URL = (
    "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
    f"v{SCHEMA_VERSION}/dist/container-scanning-report-format.json"
)
REPORT_NAME = "gl-container-scanning-report.json"

SEVERITIES = {
    Severity.CRITICAL: "Critical",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
    Severity.UNKNOWN: "Unknown",
}
# The schema's limits on these fields.
_NAME_MAX = 255
_DESCRIPTION_MAX = 1_048_576
_SOLUTION_MAX = 7000
_IDS = uuid.UUID("3a1f2c5e-8d5b-4f0e-9c71-6f0b8a9d4e21")  # namespace of finding ids
_EPOCH = "1970-01-01T00:00:00"


def container_scanning_report(
    report: ScanReport, *, image: str | None = None, end_time: datetime | None = None
) -> dict[str, Any]:
    """The GitLab container-scanning document for ``report``.

    Args:
        report: A parsed Trivy report of an image.
        image: The image reference to show (default: what Trivy scanned).
        end_time: When the scan finished (default: the report's ``CreatedAt``).

    Returns:
        A JSON-ready mapping that validates against the schema ``SCHEMA_VERSION``.
    """
    shown = image or report.artifact_name or "image"
    operating_system = report.operating_system or "Unknown"
    finished = _timestamp(end_time, report.created_at)
    vulnerabilities = [
        _vulnerability(result, vuln, shown, operating_system)
        for result, vuln in report.vulnerabilities()
    ]
    tool = {"name": "Trivy", "url": "https://github.com/aquasecurity/trivy"}
    return {
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URL,
        "scan": {
            "analyzer": {
                "id": "conveyor",
                "name": "Conveyor",
                "url": "https://github.com/conveyor-ci/conveyor",
                "version": __version__,
                "vendor": {"name": "Conveyor"},
            },
            "scanner": {
                "id": "trivy",
                **tool,
                "version": report.scanner_version or "unknown",
                "vendor": {"name": "Aqua Security"},
            },
            "type": "container_scanning",
            "status": "success",
            "start_time": finished,
            "end_time": finished,
        },
        "vulnerabilities": vulnerabilities,
    }


def write_container_scanning_report(
    report: ScanReport, output: Path, *, image: str | None = None
) -> int:
    """Write the report to ``output`` (atomically) and return how many findings it holds."""
    document = container_scanning_report(report, image=image)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(output)
    return len(document["vulnerabilities"])


def _vulnerability(
    result: Result, vuln: Vulnerability, image: str, operating_system: str
) -> dict[str, Any]:
    finding = "\n".join((image, result.target, vuln.id, vuln.package, vuln.installed_version))
    entry: dict[str, Any] = {
        "id": str(uuid.uuid5(_IDS, finding)),
        "name": (vuln.title or vuln.id)[:_NAME_MAX],
        "description": (vuln.description or vuln.title or vuln.id)[:_DESCRIPTION_MAX],
        "severity": SEVERITIES[vuln.severity],
        "solution": (
            f"Upgrade {vuln.package} to {vuln.fixed_version}"
            if vuln.fixed_version
            else f"No fixed version of {vuln.package} is known yet"
        )[:_SOLUTION_MAX],
        "identifiers": [_identifier(vuln)],
        "location": {
            "dependency": {
                "package": {"name": vuln.package},
                "version": vuln.installed_version,
            },
            "operating_system": operating_system,
            "image": image,
        },
    }
    if _is_url(vuln.primary_url):
        entry["links"] = [{"url": vuln.primary_url}]
    return entry


def _identifier(vuln: Vulnerability) -> dict[str, str]:
    kind = vuln.id.split("-", 1)[0].lower() if "-" in vuln.id else "trivy"
    if kind not in {"cve", "ghsa", "cwe", "osvdb", "usn", "rhsa", "elsa", "dsa", "alas"}:
        kind = "trivy"
    identifier = {"type": kind, "name": vuln.id, "value": vuln.id}
    if _is_url(vuln.primary_url):
        identifier["url"] = str(vuln.primary_url)
    return identifier


def _is_url(value: str | None) -> bool:
    return bool(value) and str(value).startswith(("https://", "http://", "ftp://"))


def _timestamp(when: datetime | None, created_at: str) -> str:
    """``yyyy-mm-ddThh:mm:ss`` in UTC, the only form the schema accepts."""
    if when is None and created_at:
        try:
            when = datetime.fromisoformat(created_at[:19])
        except ValueError:
            when = None
    if when is None:
        return _EPOCH
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S")
