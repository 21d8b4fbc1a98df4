from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor.errors import ConveyorError, ScanReportError
from conveyor.scan.report import Severity, load_report, parse_report

from .conftest import TRIVY_REPORTS

JSON_REPORTS = sorted(p.name for p in TRIVY_REPORTS.glob("*.json") if ".sarif." not in p.name)

# (id, package, installed, fixed, severity) as read from each recorded report.
EXPECTED_VULNERABILITIES = {
    "alpine-310.json": [
        ("CVE-2019-1549", "libcrypto1.1", "1.1.1c-r0", "1.1.1d-r0", "MEDIUM"),
        ("CVE-2019-1551", "libcrypto1.1", "1.1.1c-r0", "1.1.1d-r2", "MEDIUM"),
        ("CVE-2019-1549", "libssl1.1", "1.1.1c-r0", "1.1.1d-r0", "MEDIUM"),
        ("CVE-2019-1551", "libssl1.1", "1.1.1c-r0", "1.1.1d-r2", "MEDIUM"),
    ],
    "debian-buster.json": [
        ("CVE-2019-18276", "bash", "5.0-4", None, "LOW"),
        ("CVE-2019-18224", "libidn2-0", "2.0.5-1", "2.0.5-1+deb10u1", "CRITICAL"),
    ],
    "distroless-python27.json": [
        ("CVE-2019-1551", "libssl1.1", "1.1.0k-1~deb9u1", None, "MEDIUM"),
        ("CVE-2019-1563", "libssl1.1", "1.1.0k-1~deb9u1", "1.1.0l-1~deb9u1", "LOW"),
        ("CVE-2019-1551", "openssl", "1.1.0k-1~deb9u1", None, "MEDIUM"),
        ("CVE-2019-1563", "openssl", "1.1.0k-1~deb9u1", "1.1.0l-1~deb9u1", "LOW"),
    ],
    "dockerfile.json": [],
    "pip.json": [
        ("CVE-2019-14806", "Werkzeug", "0.11", "0.15.3", "HIGH"),
        ("CVE-2020-28724", "Werkzeug", "0.11", "0.11.6", "MEDIUM"),
    ],
    "poetry.json": [("CVE-2019-14806", "werkzeug", "0.14", "0.15.3", "HIGH")],
    "secrets.json": [],
}

# (target, class, type) of each result.
EXPECTED_RESULTS = {
    "alpine-310.json": [
        ("testdata/fixtures/images/alpine-310.tar.gz (alpine 3.10.2)", "os-pkgs", "alpine")
    ],
    "debian-buster.json": [
        ("testdata/fixtures/images/debian-buster.tar.gz (debian 10.1)", "os-pkgs", "debian")
    ],
    "distroless-python27.json": [
        ("testdata/fixtures/images/distroless-python27.tar.gz (debian 9.9)", "os-pkgs", "debian")
    ],
    "dockerfile.json": [("Dockerfile", "config", "dockerfile")],
    "pip.json": [("requirements.txt", "lang-pkgs", "pip")],
    "poetry.json": [("poetry.lock", "lang-pkgs", "poetry")],
    "secrets.json": [("deploy.sh", "secret", None)],
}


def test_every_recorded_report_has_expectations() -> None:
    assert set(JSON_REPORTS) == set(EXPECTED_VULNERABILITIES) == set(EXPECTED_RESULTS)


@pytest.mark.parametrize("name", JSON_REPORTS)
def test_recorded_report_vulnerabilities(name: str) -> None:
    report = load_report(TRIVY_REPORTS / name)

    got = [
        (v.id, v.package, v.installed_version, v.fixed_version, v.severity.value)
        for _, v in report.vulnerabilities()
    ]

    assert got == EXPECTED_VULNERABILITIES[name]
    assert [(r.target, r.result_class, r.type) for r in report.results] == EXPECTED_RESULTS[name]
    assert report.source == str(TRIVY_REPORTS / name)


def test_vulnerability_details_from_alpine() -> None:
    report = load_report(TRIVY_REPORTS / "alpine-310.json")

    _, first = next(report.vulnerabilities())

    assert report.artifact_name == "testdata/fixtures/images/alpine-310.tar.gz"
    assert report.artifact_type == "container_image"
    assert first.title == "openssl: information disclosure in fork()"
    assert first.primary_url == "https://avd.aquasec.com/nvd/cve-2019-1549"
    assert first.score == 5.3
    assert first.fixed
    assert first.description.startswith("OpenSSL 1.1.1 introduced a rewritten")


def test_unfixed_vulnerability_has_no_fixed_version() -> None:
    report = load_report(TRIVY_REPORTS / "debian-buster.json")

    bash = next(v for _, v in report.vulnerabilities() if v.package == "bash")

    assert bash.fixed_version is None
    assert not bash.fixed


def test_misconfiguration_from_dockerfile_report() -> None:
    report = load_report(TRIVY_REPORTS / "dockerfile.json")

    [(result, misconf)] = list(report.misconfigurations())

    assert result.target == "Dockerfile"
    assert misconf.id == "DS-0002"
    assert misconf.severity is Severity.HIGH
    assert misconf.title == "Image user should not be 'root'"
    assert misconf.primary_url == "https://avd.aquasec.com/misconfig/ds-0002"
    assert misconf.failed


def test_secrets_keep_rule_and_place_but_no_code() -> None:
    report = load_report(TRIVY_REPORTS / "secrets.json")

    found = [(s.rule_id, s.category, s.severity.value, s.start_line) for _, s in report.secrets()]

    assert found == [
        ("aws-access-key-id", "AWS", "CRITICAL", 3),
        ("mysecret", "Custom", "HIGH", 7),
    ]
    # The recorded report quotes a token on a context line; it must not survive parsing.
    assert "ghp_" in (TRIVY_REPORTS / "secrets.json").read_text()
    assert "ghp_" not in repr(report)


def test_passed_misconfiguration_is_not_a_finding(tmp_path: Path) -> None:
    data = json.loads((TRIVY_REPORTS / "dockerfile.json").read_text())
    data["Results"][0]["Misconfigurations"][0]["Status"] = "PASS"
    path = tmp_path / "pass.json"
    path.write_text(json.dumps(data))

    report = load_report(path)

    assert list(report.misconfigurations()) == []
    assert len(report.results[0].misconfigurations) == 1


def test_clean_report_without_results(tmp_path: Path) -> None:
    path = tmp_path / "clean.json"
    path.write_text(json.dumps({"SchemaVersion": 2, "ArtifactName": "app.tar"}))

    report = load_report(path)

    assert report.results == ()
    assert report.artifact_name == "app.tar"


def test_truncated_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trivy.json"
    path.write_text((TRIVY_REPORTS / "pip.json").read_text()[:500])

    with pytest.raises(ScanReportError) as info:
        load_report(path)

    assert str(path) in str(info.value)
    assert "is not JSON" in str(info.value)
    assert isinstance(info.value, ConveyorError)
    assert info.value.path == path


@pytest.mark.parametrize("version", [1, 3, None, "2"])
def test_wrong_schema_version(tmp_path: Path, version: object) -> None:
    path = tmp_path / "old.json"
    shutil.copy(TRIVY_REPORTS / "alpine-310.json", path)
    data = json.loads(path.read_text())
    data["SchemaVersion"] = version
    path.write_text(json.dumps(data))

    with pytest.raises(ScanReportError, match="SchemaVersion is") as info:
        load_report(path)

    assert str(path) in str(info.value)
    assert repr(version) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    with pytest.raises(ScanReportError, match="cannot be read") as info:
        load_report(path)

    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.__setitem__("Results", {}), "document.Results: expected a list"),
        (
            lambda d: d["Results"][0]["Vulnerabilities"][1].pop("VulnerabilityID"),
            "Results[0].Vulnerabilities[1].VulnerabilityID",
        ),
        (
            lambda d: d["Results"][0]["Vulnerabilities"][0].__setitem__("Severity", "SEVERE"),
            "Results[0].Vulnerabilities[0].Severity: 'SEVERE' is not one of",
        ),
        (lambda d: d["Results"].__setitem__(0, "x"), "Results[0]: expected an object"),
        (lambda d: d["Results"][0].pop("Target"), "Results[0].Target"),
    ],
)
def test_malformed_field_is_named(mutate: Callable[[dict[str, Any]], object], where: str) -> None:
    data = json.loads((TRIVY_REPORTS / "debian-buster.json").read_text())
    mutate(data)

    with pytest.raises(ScanReportError) as info:
        parse_report(json.dumps(data), source="scan/trivy.json")

    assert where in str(info.value)
    assert str(info.value).startswith("scan/trivy.json: ")


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ScanReportError, match="document: expected an object, found list"):
        parse_report("[]", source="r.json")


def test_severity_rank_orders_lowest_first() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]
    assert Severity.CRITICAL.rank > Severity.HIGH.rank
