from __future__ import annotations

from datetime import date

from conveyor.config.models import IgnoreEntry, ScanStageConfig
from conveyor.scan.gate import evaluate
from conveyor.scan.report import load_report
from conveyor.scan.summary import render_summary

from .conftest import TRIVY_REPORTS

TODAY = date(2025, 6, 1)


def test_failed_gate_summary_is_exact() -> None:
    report = load_report(TRIVY_REPORTS / "debian-buster.json")
    gate = evaluate(report, ScanStageConfig(), today=TODAY)

    text = render_summary(report, gate)

    # The title is clipped so the line fits the default width of 100.
    assert text == (
        "Scan of testdata/fixtures/images/debian-buster.tar.gz: 2 finding(s) "
        "(CRITICAL 1, HIGH 0, MEDIUM 0, LOW 1, UNKNOWN 0)\n"
        "Gate (fail on CRITICAL, HIGH): FAILED, 1 blocking\n"
        "  CRITICAL CVE-2019-18224 in libidn2-0 2.0.5-1 (fixed in 2.0.5-1+deb10u1)  "
        "libidn2: heap-based bu..."
    )
    assert len(text.splitlines()[-1]) == 100


def test_summary_lists_ignored_expired_unused_and_unfixed() -> None:
    report = load_report(TRIVY_REPORTS / "distroless-python27.json")
    options = ScanStageConfig(
        fail_on=["MEDIUM", "LOW"],
        ignore_unfixed=True,
        ignore=[
            IgnoreEntry(id="CVE-2019-1563", reason="no TLS in this image", expires=TODAY),
            IgnoreEntry(id="CVE-2019-0001", reason="old", expires=date(2025, 5, 1)),
            IgnoreEntry(id="CVE-2019-0002", reason="never seen", expires=date(2026, 1, 1)),
        ],
    )
    gate = evaluate(report, options, today=TODAY)

    text = render_summary(report, gate)

    assert text.splitlines() == [
        "Scan of testdata/fixtures/images/distroless-python27.tar.gz: 4 finding(s) "
        "(CRITICAL 0, HIGH 0, MEDIUM 2, LOW 2, UNKNOWN 0)",
        "Gate (fail on MEDIUM, LOW): passed",
        "Skipped 2 finding(s) with no fix yet (ignore_unfixed)",
        "Ignored 2 finding(s):",
        "  CVE-2019-1563 until 2025-06-01: no TLS in this image",
        "Expired ignore entry CVE-2019-0001 (expired 2025-05-01): "
        "no longer ignores; renew or remove it",
        "Ignore entries that matched nothing: CVE-2019-0002",
    ]


def test_long_lists_are_cut_to_the_limit_and_lines_fit() -> None:
    report = load_report(TRIVY_REPORTS / "alpine-310.json")
    gate = evaluate(report, ScanStageConfig(fail_on=["MEDIUM"]), today=TODAY)

    lines = render_summary(report, gate, limit=2, width=80).splitlines()

    assert lines[1] == "Gate (fail on MEDIUM): FAILED, 4 blocking"
    assert len([line for line in lines if line.startswith("  MEDIUM")]) == 2
    assert lines[-1] == "  ... and 2 more (see the SARIF report)"
    assert all(len(line) <= 80 for line in lines[1:])
