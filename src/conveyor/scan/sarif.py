"""SARIF 2.1.0 from a parsed Trivy report, shaped like Trivy's own SARIF.

The output follows what ``trivy --format sarif`` writes (rule per finding id
with a help URI, results pointing at the rule by index, locations on the
artifact and package), so code-scanning tools that already read Trivy's SARIF
read ours the same way.  Levels follow the severity: CRITICAL and HIGH are
``error``, MEDIUM ``warning``, LOW and UNKNOWN ``note``.  GitHub's
``security-severity`` property takes the CVSS v3 score Trivy chose, or a
fixed score per severity when the report has none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conveyor.atomic import write_atomically
from conveyor.scan.report import ScanReport, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/main/sarif-2.1/schema/"
    "sarif-schema-2.1.0.json"
)
TOOL_NAME = "Trivy"
TOOL_URI = "https://github.com/aquasecurity/trivy"

LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}
# Used for security-severity when the report carries no CVSS v3 score.
SEVERITY_SCORES = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.UNKNOWN: 0.0,
}

# "image.tar (alpine 3.10.2)" -> "image.tar": OS results name the distribution after the path.
_OS_SUFFIX = re.compile(r"\s+\([^()]*\)$")


def artifact_uri(target: str, result_class: str) -> str:
    """The location URI for a result's target, as Trivy writes it.

    Args:
        target: The result's ``Target``.
        result_class: The result's ``Class``; only ``os-pkgs`` targets carry a
            distribution suffix to strip.

    Returns:
        A relative path with forward slashes.
    """
    if result_class == "os-pkgs":
        target = _OS_SUFFIX.sub("", target)
    return target.replace("\\", "/")


class _Run:
    """Collects rules (deduplicated by id, in first-seen order) and results."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.results: list[dict[str, Any]] = []

    def rule(self, rule_id: str, build: dict[str, Any]) -> int:
        if rule_id not in self.index:
            self.index[rule_id] = len(self.rules)
            self.rules.append(build)
        return self.index[rule_id]

    def add(
        self,
        rule: dict[str, Any],
        severity: Severity,
        *,
        message: str,
        uri: str,
        location_message: str,
        lines: tuple[int, int] = (1, 1),
    ) -> None:
        rule_id: str = rule["id"]
        start, end = max(1, lines[0]), max(1, lines[1], lines[0])
        self.results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": self.rule(rule_id, rule),
                "level": LEVELS[severity],
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": uri, "uriBaseId": "ROOTPATH"},
                            "region": {
                                "startLine": start,
                                "startColumn": 1,
                                "endLine": end,
                                "endColumn": 1,
                            },
                        },
                        "message": {"text": location_message},
                    }
                ],
            }
        )


def _rule(
    rule_id: str,
    severity: Severity,
    *,
    name: str,
    title: str,
    description: str,
    url: str | None,
    help_text: str,
    help_markdown: str,
    kind: str,
    score: float | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": title or rule_id},
        "fullDescription": {"text": description or title or rule_id},
        "defaultConfiguration": {"level": LEVELS[severity]},
        "help": {"text": help_text, "markdown": help_markdown},
        "properties": {
            "precision": "very-high",
            "security-severity": f"{score if score is not None else SEVERITY_SCORES[severity]:.1f}",
            "tags": [kind, "security", severity.value],
        },
    }
    if url:
        rule["helpUri"] = url
    return rule


def _link(rule_id: str, url: str | None) -> str:
    return f"[{rule_id}]({url})" if url else rule_id


def to_sarif(report: ScanReport) -> dict[str, Any]:
    """Build the SARIF 2.1.0 document for a report.

    Args:
        report: The parsed Trivy report.

    Returns:
        The SARIF log as JSON-ready data, one run whose tool is Trivy.
    """
    run = _Run()
    for result in report.results:
        uri = artifact_uri(result.target, result.result_class)
        name = (
            "OsPackageVulnerability"
            if result.result_class == "os-pkgs"
            else "LanguageSpecificPackageVulnerability"
        )
        for v in result.vulnerabilities:
            fixed = v.fixed_version or ""
            link = _link(v.id, v.primary_url)
            help_text = (
                f"Vulnerability {v.id}\nSeverity: {v.severity}\nPackage: {v.package}\n"
                f"Fixed Version: {fixed}\nLink: {link}\n{v.description}"
            )
            help_markdown = (
                f"**Vulnerability {v.id}**\n| Severity | Package | Fixed Version | Link |\n"
                f"| --- | --- | --- | --- |\n|{v.severity}|{v.package}|{fixed}|{link}|\n\n"
                f"{v.description}"
            )
            rule = _rule(
                v.id,
                v.severity,
                name=name,
                title=v.title,
                description=v.description,
                url=v.primary_url,
                help_text=help_text,
                help_markdown=help_markdown,
                kind="vulnerability",
                score=v.score,
            )
            message = (
                f"Package: {v.package}\nInstalled Version: {v.installed_version}\n"
                f"Vulnerability {v.id}\nSeverity: {v.severity}\nFixed Version: {fixed}\n"
                f"Link: {link}"
            )
            run.add(
                rule,
                v.severity,
                message=message,
                uri=uri,
                location_message=f"{uri}: {v.package}@{v.installed_version}",
            )
        for s in result.secrets:
            text = f"Secret {s.title or s.rule_id}\nSeverity: {s.severity}\nCategory: {s.category}"
            rule = _rule(
                s.rule_id,
                s.severity,
                name="Secret",
                title=s.title,
                description="",
                url=None,
                help_text=text,
                help_markdown=text,
                kind="secret",
            )
            run.add(
                rule,
                s.severity,
                message=f"Artifact: {uri}\n{text}",
                uri=uri,
                location_message=uri,
                lines=(s.start_line, s.end_line),
            )
        for m in result.misconfigurations:
            if not m.failed:
                continue
            link = _link(m.id, m.primary_url)
            text = (
                f"Misconfiguration {m.id}\nSeverity: {m.severity}\n{m.title}\n"
                f"Resolution: {m.resolution}\nLink: {link}"
            )
            rule = _rule(
                m.id,
                m.severity,
                name="Misconfiguration",
                title=m.title,
                description=m.message,
                url=m.primary_url,
                help_text=text,
                help_markdown=text,
                kind="misconfiguration",
            )
            run.add(
                rule,
                m.severity,
                message=f"Artifact: {uri}\n{m.message}",
                uri=uri,
                location_message=uri,
            )

    return {
        "version": SARIF_VERSION,
        "$schema": SARIF_SCHEMA,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "fullName": "Trivy Vulnerability Scanner",
                        "informationUri": TOOL_URI,
                        "name": TOOL_NAME,
                        "rules": run.rules,
                    }
                },
                "results": run.results,
                "columnKind": "utf16CodeUnits",
                "properties": {"artifactName": report.artifact_name},
            }
        ],
    }


def write_sarif(report: ScanReport, path: Path) -> Path:
    """Write the SARIF document for a report.

    Args:
        report: The parsed Trivy report.
        path: Where to write; parent directories are created.

    Returns:
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(to_sarif(report), indent=2) + "\n")
    return path
