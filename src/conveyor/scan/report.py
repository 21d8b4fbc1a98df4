"""A Trivy JSON report (``SchemaVersion`` 2) as frozen values.

Only what the gate, the SARIF writer and the summary need is kept.  Secret
findings keep their rule, place and severity but never the matched code: Trivy
masks the matched line, yet the surrounding lines it quotes can still hold a
live credential, and these values end up in logs and SARIF uploads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from conveyor.errors import ScanReportError

SCHEMA_VERSION = 2


class Severity(StrEnum):
    """Trivy's severities, lowest first; ``rank`` orders them."""

    UNKNOWN = "UNKNOWN"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Vulnerability:
    """One vulnerable package version (Trivy ``Vulnerabilities[]``)."""

    id: str
    package: str
    installed_version: str
    fixed_version: str | None
    severity: Severity
    title: str = ""
    description: str = ""
    primary_url: str | None = None
    score: float | None = None

    @property
    def fixed(self) -> bool:
        """Whether a fixed version exists."""
        return bool(self.fixed_version)


@dataclass(frozen=True)
class Misconfiguration:
    """One configuration check (Trivy ``Misconfigurations[]``)."""

    id: str
    title: str
    severity: Severity
    message: str = ""
    resolution: str = ""
    primary_url: str | None = None
    status: str = "FAIL"

    @property
    def failed(self) -> bool:
        """Whether the check failed (passes only appear with --include-non-failures)."""
        return self.status != "PASS"


@dataclass(frozen=True)
class SecretFinding:
    """One hard-coded secret (Trivy ``Secrets[]``), without the matched text."""

    rule_id: str
    category: str
    severity: Severity
    title: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class Result:
    """The findings for one target (an OS, a lock file, a file with secrets)."""

    target: str
    result_class: str
    type: str | None
    vulnerabilities: tuple[Vulnerability, ...] = ()
    misconfigurations: tuple[Misconfiguration, ...] = ()
    secrets: tuple[SecretFinding, ...] = ()


@dataclass(frozen=True)
class ScanReport:
    """A whole Trivy report.

    Attributes:
        source: Where it was read from (for messages).
        artifact_name: What was scanned (image tarball, directory, image name).
        artifact_type: ``container_image``, ``repository``, ``filesystem`` ...
        results: One per target, in report order.
        operating_system: The image's distribution (``Metadata.OS``: "alpine 3.10.2"), or "".
        scanner_version: The Trivy release that wrote the report (``Trivy.Version``), or "".
        created_at: When the scan ran (``CreatedAt``, RFC 3339), or "".
    """

    source: str
    artifact_name: str
    artifact_type: str
    results: tuple[Result, ...]
    operating_system: str = ""
    scanner_version: str = ""
    created_at: str = ""

    def vulnerabilities(self) -> Iterator[tuple[Result, Vulnerability]]:
        """Every vulnerability with the result it belongs to."""
        for result in self.results:
            for vuln in result.vulnerabilities:
                yield result, vuln

    def secrets(self) -> Iterator[tuple[Result, SecretFinding]]:
        """Every secret finding with the result it belongs to."""
        for result in self.results:
            for secret in result.secrets:
                yield result, secret

    def misconfigurations(self) -> Iterator[tuple[Result, Misconfiguration]]:
        """Every failed configuration check with the result it belongs to."""
        for result in self.results:
            for misconf in result.misconfigurations:
                if misconf.failed:
                    yield result, misconf


def load_report(path: Path) -> ScanReport:
    """Read and parse a Trivy JSON report file.

    Args:
        path: The file written by ``trivy ... --format json --output``.

    Returns:
        The parsed report.

    Raises:
        ScanReportError: The file is missing, not JSON, not schema version 2, or
            a field has the wrong type.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScanReportError(path, f"cannot be read: {exc.strerror or exc}") from exc
    return parse_report(text, source=str(path))


def parse_report(text: str, *, source: str) -> ScanReport:
    """Parse the text of a Trivy JSON report.

    Args:
        text: The JSON document.
        source: Its file name or origin, used in error messages.

    Returns:
        The parsed report.

    Raises:
        ScanReportError: Not JSON, not schema version 2, or a field is malformed.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScanReportError(
            source, f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    return _Parser(source).report(data)


class _Parser:
    """Walks the decoded JSON, naming the JSON path of anything malformed."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ScanReportError:
        return ScanReportError(self.source, f"{where}: {problem}")

    def obj(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, found {type(value).__name__}")
        return value

    def items(self, data: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}", f"expected a list, found {type(value).__name__}")
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
        value = data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self.fail(f"{where}.{key}", f"expected a non-empty string, found {value!r}")
        return value

    def optional(self, data: Mapping[str, Any], key: str, where: str) -> str | None:
        value = self.text(data, key, where, required=False)
        return value or None

    def severity(self, data: Mapping[str, Any], where: str) -> Severity:
        value = data.get("Severity", "UNKNOWN")
        try:
            return Severity(value)
        except ValueError:
            raise self.fail(
                f"{where}.Severity",
                f"{value!r} is not one of {', '.join(s.value for s in Severity)}",
            ) from None

    def line(self, data: Mapping[str, Any], key: str, where: str) -> int:
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"expected a line number, found {value!r}")
        return value

    def report(self, data: Any) -> ScanReport:
        root = self.obj(data, "document")
        version = root.get("SchemaVersion")
        if version != SCHEMA_VERSION:
            raise ScanReportError(
                self.source,
                f"SchemaVersion is {version!r}, expected {SCHEMA_VERSION}",
                hint="use a Trivy release that writes SchemaVersion 2 (v0.20 or newer)",
            )
        results = tuple(
            self.result(item, f"Results[{i}]")
            for i, item in enumerate(self.items(root, "Results", "document"))
        )
        metadata = self.obj(root.get("Metadata") or {}, "document.Metadata")
        os_info = self.obj(metadata.get("OS") or {}, "document.Metadata.OS")
        trivy = self.obj(root.get("Trivy") or {}, "document.Trivy")
        return ScanReport(
            source=self.source,
            artifact_name=self.text(root, "ArtifactName", "document", required=False),
            artifact_type=self.text(root, "ArtifactType", "document", required=False),
            results=results,
            operating_system=" ".join(
                part
                for key in ("Family", "Name")
                if (part := self.text(os_info, key, "document.Metadata.OS", required=False))
            ),
            scanner_version=self.text(trivy, "Version", "document.Trivy", required=False),
            created_at=self.text(root, "CreatedAt", "document", required=False),
        )

    def result(self, value: Any, where: str) -> Result:
        data = self.obj(value, where)
        return Result(
            target=self.text(data, "Target", where),
            result_class=self.text(data, "Class", where, required=False),
            type=self.optional(data, "Type", where),
            vulnerabilities=tuple(
                self.vulnerability(item, f"{where}.Vulnerabilities[{i}]")
                for i, item in enumerate(self.items(data, "Vulnerabilities", where))
            ),
            misconfigurations=tuple(
                self.misconfiguration(item, f"{where}.Misconfigurations[{i}]")
                for i, item in enumerate(self.items(data, "Misconfigurations", where))
            ),
            secrets=tuple(
                self.secret(item, f"{where}.Secrets[{i}]")
                for i, item in enumerate(self.items(data, "Secrets", where))
            ),
        )

    def vulnerability(self, value: Any, where: str) -> Vulnerability:
        data = self.obj(value, where)
        return Vulnerability(
            id=self.text(data, "VulnerabilityID", where),
            package=self.text(data, "PkgName", where),
            installed_version=self.text(data, "InstalledVersion", where, required=False),
            fixed_version=self.optional(data, "FixedVersion", where),
            severity=self.severity(data, where),
            title=self.text(data, "Title", where, required=False),
            description=self.text(data, "Description", where, required=False),
            primary_url=self.optional(data, "PrimaryURL", where),
            score=_cvss_score(data),
        )

    def misconfiguration(self, value: Any, where: str) -> Misconfiguration:
        data = self.obj(value, where)
        return Misconfiguration(
            id=self.text(data, "ID", where),
            title=self.text(data, "Title", where, required=False),
            severity=self.severity(data, where),
            message=self.text(data, "Message", where, required=False),
            resolution=self.text(data, "Resolution", where, required=False),
            primary_url=self.optional(data, "PrimaryURL", where),
            status=self.text(data, "Status", where, required=False) or "FAIL",
        )

    def secret(self, value: Any, where: str) -> SecretFinding:
        data = self.obj(value, where)
        return SecretFinding(
            rule_id=self.text(data, "RuleID", where),
            category=self.text(data, "Category", where, required=False),
            severity=self.severity(data, where),
            title=self.text(data, "Title", where, required=False),
            start_line=self.line(data, "StartLine", where),
            end_line=self.line(data, "EndLine", where),
        )


def _cvss_score(data: Mapping[str, Any]) -> float | None:
    """The CVSS v3 score from the source Trivy took the severity from, if any."""
    cvss = data.get("CVSS")
    source = data.get("SeveritySource")
    if not isinstance(cvss, dict) or not isinstance(source, str):
        return None
    entry = cvss.get(source)
    if not isinstance(entry, dict):
        return None
    score = entry.get("V3Score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        return float(score)
    return None
