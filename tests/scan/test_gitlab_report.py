"""GitLab's container-scanning report from real Trivy reports (/work/shared/fixtures/trivy).

``REQUIRED`` restates, as a JSON Schema, every constraint GitLab's published
container-scanning schema v15.2.4 (security-report-schemas,
dist/container-scanning-report-format.json) puts on the fields the converter
writes: the required keys, the enums, the patterns and the length limits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from conveyor.scan.gitlab import SCHEMA_VERSION, container_scanning_report
from conveyor.scan.report import load_report

FIXTURES = Path("/work/shared/fixtures/trivy")
IMAGE_REPORTS = ["alpine-310.json", "debian-buster.json", "distroless-python27.json"]
CONVEYOR = Path(sys.executable).with_name("conveyor")

_IDENTIFIER = {
    "type": "object",
    "required": ["type", "name", "value"],
    "properties": {
        "type": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "value": {"type": "string", "minLength": 1},
        "url": {"type": "string", "pattern": "^(https?|ftp)://.+"},
    },
}
_TOOL = {
    "type": "object",
    "required": ["id", "name", "version", "vendor"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "version": {"type": "string", "minLength": 1},
        "vendor": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1}},
        },
    },
}
_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"}
REQUIRED: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["scan", "version", "vulnerabilities"],
    "properties": {
        "version": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
        "schema": {"type": "string", "pattern": "^https?://.+"},
        "scan": {
            "type": "object",
            "required": ["analyzer", "end_time", "scanner", "start_time", "status", "type"],
            "properties": {
                "analyzer": {
                    **_TOOL,
                    "properties": {
                        **_TOOL["properties"],
                        "url": {"type": "string", "pattern": "^https?://.+"},
                    },
                },
                "scanner": _TOOL,
                "start_time": _TIME,
                "end_time": _TIME,
                "status": {"enum": ["success", "failure"]},
                "type": {"enum": ["container_scanning", "container_scanning_for_registry"]},
            },
        },
        "vulnerabilities": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "identifiers", "location"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "maxLength": 255},
                    "description": {"type": "string", "maxLength": 1048576},
                    "severity": {"enum": ["Info", "Unknown", "Low", "Medium", "High", "Critical"]},
                    "solution": {"type": "string", "maxLength": 7000},
                    "identifiers": {"type": "array", "minItems": 1, "items": _IDENTIFIER},
                    "links": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["url"],
                            "properties": {
                                "url": {"type": "string", "pattern": "^(https?|ftp)://.+"}
                            },
                        },
                    },
                    "location": {
                        "type": "object",
                        "required": ["dependency", "operating_system", "image"],
                        "properties": {
                            "dependency": {
                                "type": "object",
                                "required": ["package", "version"],
                                "properties": {
                                    "package": {
                                        "type": "object",
                                        "required": ["name"],
                                        "properties": {"name": {"type": "string"}},
                                    },
                                    "version": {"type": "string"},
                                },
                            },
                            "operating_system": {"type": "string", "minLength": 1},
                            "image": {"type": "string", "minLength": 1},
                        },
                    },
                },
            },
        },
    },
}


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft7Validator(REQUIRED).iter_errors(document)
    ]


@pytest.mark.parametrize("name", IMAGE_REPORTS)
def test_every_image_report_converts_to_a_valid_gitlab_report(name: str) -> None:
    report = load_report(FIXTURES / name)
    document = container_scanning_report(report, image="registry.example/app:abc")
    assert schema_errors(document) == []
    assert document["version"] == SCHEMA_VERSION
    # every vulnerability Trivy found, none invented
    assert len(document["vulnerabilities"]) == sum(1 for _ in report.vulnerabilities())
    assert len({v["id"] for v in document["vulnerabilities"]}) == len(document["vulnerabilities"])


def test_the_alpine_findings_keep_package_version_severity_and_fix() -> None:
    report = load_report(FIXTURES / "alpine-310.json")
    document = container_scanning_report(report, image="registry.example/app:abc")
    first = document["vulnerabilities"][0]
    assert first["identifiers"] == [
        {
            "type": "cve",
            "name": "CVE-2019-1549",
            "value": "CVE-2019-1549",
            "url": "https://avd.aquasec.com/nvd/cve-2019-1549",
        }
    ]
    assert first["severity"] == "Medium"
    assert first["solution"] == "Upgrade libcrypto1.1 to 1.1.1d-r0"
    assert first["location"] == {
        "dependency": {"package": {"name": "libcrypto1.1"}, "version": "1.1.1c-r0"},
        "operating_system": "alpine 3.10.2",
        "image": "registry.example/app:abc",
    }
    assert document["scan"]["scanner"]["version"] == "dev"  # Trivy.Version of the fixture
    assert document["scan"]["end_time"] == "2021-08-25T12:20:30"  # its CreatedAt


def test_ids_are_stable_across_conversions() -> None:
    report = load_report(FIXTURES / "debian-buster.json")
    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    one = container_scanning_report(report, image="x", end_time=now)
    two = container_scanning_report(report, image="x")
    assert [v["id"] for v in one["vulnerabilities"]] == [v["id"] for v in two["vulnerabilities"]]
    assert one["scan"]["end_time"] == "2026-12-02T08:00:00"


def test_a_report_without_findings_is_valid_and_empty() -> None:
    report = load_report(FIXTURES / "dockerfile.json")  # misconfigurations only
    document = container_scanning_report(report)
    assert schema_errors(document) == []
    assert document["vulnerabilities"] == []


def test_the_command_writes_the_file_and_says_how_many(tmp_path: Path) -> None:
    output = tmp_path / "gl-container-scanning-report.json"
    arguments = ["--output", str(output), "--image", "registry.example/app:abc"]
    report = str(FIXTURES / "alpine-310.json")
    done = subprocess.run(
        [str(CONVEYOR), "report", "gitlab-container-scanning", report, *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"wrote {output}: 4 vulnerabilities in GitLab's container-scanning format\n"
    )
    assert schema_errors(json.loads(output.read_text())) == []
    assert [p.name for p in tmp_path.iterdir()] == [output.name]  # no temporary left


def test_the_command_names_a_file_that_is_not_a_trivy_report(tmp_path: Path) -> None:
    bad = tmp_path / "trivy.json"
    bad.write_text('{"SchemaVersion": 1}')
    done = subprocess.run(
        [str(CONVEYOR), "report", "gitlab-container-scanning", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"{bad}: SchemaVersion is 1, expected 2" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "gl-container-scanning-report.json").exists()
