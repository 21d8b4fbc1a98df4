from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.config.models import SEVERITIES, IgnoreEntry, ScanStageConfig
from conveyor.errors import ScanGateError
from conveyor.scan.gate import FindingKind, evaluate, findings
from conveyor.scan.report import ScanReport, Severity, load_report

from .conftest import TRIVY_REPORTS

TODAY = date(2025, 6, 1)


def report(name: str) -> ScanReport:
    return load_report(TRIVY_REPORTS / name)


def config(**values: object) -> ScanStageConfig:
    return ScanStageConfig.model_validate(values)


def test_default_gate_blocks_the_critical_debian_vulnerability() -> None:
    result = evaluate(report("debian-buster.json"), config(), today=TODAY)

    assert not result.passed
    assert result.blocking_ids == ("CVE-2019-18224",)
    assert result.blocking[0].package == "libidn2-0"
    assert result.fail_on == (Severity.CRITICAL, Severity.HIGH)
    assert result.counts == {
        Severity.UNKNOWN: 0,
        Severity.LOW: 1,
        Severity.MEDIUM: 0,
        Severity.HIGH: 0,
        Severity.CRITICAL: 1,
    }
    assert result.total == 2


def test_error_names_image_ids_and_severities() -> None:
    result = evaluate(report("debian-buster.json"), config(), today=TODAY)

    error = result.error("myacr.azurecr.io/hello:abc123")

    assert isinstance(error, ScanGateError)
    assert error.blocking == ("CVE-2019-18224",)
    assert "myacr.azurecr.io/hello:abc123" in str(error)
    assert "CRITICAL/HIGH" in str(error)


def test_only_medium_findings_pass_the_default_gate() -> None:
    result = evaluate(report("alpine-310.json"), config(), today=TODAY)

    assert result.passed
    assert result.error("img") is None
    assert result.counts[Severity.MEDIUM] == 4


def test_medium_gate_blocks_each_package_and_lists_ids_once() -> None:
    result = evaluate(report("alpine-310.json"), config(fail_on=["MEDIUM"]), today=TODAY)

    assert [(f.id, f.package) for f in result.blocking] == [
        ("CVE-2019-1549", "libcrypto1.1"),
        ("CVE-2019-1551", "libcrypto1.1"),
        ("CVE-2019-1549", "libssl1.1"),
        ("CVE-2019-1551", "libssl1.1"),
    ]
    assert result.blocking_ids == ("CVE-2019-1549", "CVE-2019-1551")


@pytest.mark.parametrize(
    ("ignore_unfixed", "blocking", "unfixed"),
    [(False, 2, 0), (True, 0, 2)],
)
def test_ignore_unfixed_skips_vulnerabilities_without_a_fix(
    ignore_unfixed: bool, blocking: int, unfixed: int
) -> None:
    options = config(fail_on=["MEDIUM"], ignore_unfixed=ignore_unfixed)

    result = evaluate(report("distroless-python27.json"), options, today=TODAY)

    assert len(result.blocking) == blocking
    assert len(result.unfixed) == unfixed
    assert all(f.id == "CVE-2019-1551" for f in result.blocking + result.unfixed)
    assert result.passed is (blocking == 0)


def test_ignore_unfixed_does_not_skip_fixed_vulnerabilities() -> None:
    options = config(fail_on=["LOW"], ignore_unfixed=True)

    result = evaluate(report("distroless-python27.json"), options, today=TODAY)

    assert [(f.id, f.fixed_version) for f in result.blocking] == [
        ("CVE-2019-1563", "1.1.0l-1~deb9u1"),
        ("CVE-2019-1563", "1.1.0l-1~deb9u1"),
    ]


@pytest.mark.parametrize("days_left", [0, 30])
def test_valid_ignore_entry_ignores_with_its_reason(days_left: int) -> None:
    entry = IgnoreEntry(
        id="CVE-2019-18224",
        reason="libidn2 is not reachable from the app",
        expires=TODAY + timedelta(days=days_left),
    )

    result = evaluate(report("debian-buster.json"), config(ignore=[entry]), today=TODAY)

    assert result.passed
    [ignored] = result.ignored
    assert ignored.finding.id == "CVE-2019-18224"
    assert ignored.reason == "libidn2 is not reachable from the app"
    assert ignored.expires == entry.expires
    assert result.expired == ()
    assert result.unused == ()


def test_expired_ignore_entry_no_longer_ignores_and_is_reported() -> None:
    entry = IgnoreEntry(id="CVE-2019-18224", reason="waiting for a fix", expires=date(2025, 5, 31))

    result = evaluate(report("debian-buster.json"), config(ignore=[entry]), today=TODAY)

    assert not result.passed
    assert result.blocking_ids == ("CVE-2019-18224",)
    assert result.ignored == ()
    assert result.expired == (entry,)


def test_ignore_ids_match_without_regard_to_case() -> None:
    entry = IgnoreEntry(id=" cve-2019-18224", reason="typed by hand", expires=date(2030, 1, 1))

    result = evaluate(report("debian-buster.json"), config(ignore=[entry]), today=TODAY)

    assert result.passed
    assert result.unused == ()


def test_unused_ignore_entry_is_reported() -> None:
    entry = IgnoreEntry(id="CVE-2000-0001", reason="old", expires=date(2030, 1, 1))

    result = evaluate(report("debian-buster.json"), config(ignore=[entry]), today=TODAY)

    assert result.unused == (entry,)


def test_secrets_block_and_can_be_ignored_by_rule_id() -> None:
    entry = IgnoreEntry(id="mysecret", reason="test fixture value", expires=date(2030, 1, 1))

    result = evaluate(report("secrets.json"), config(ignore=[entry]), today=TODAY)

    assert [(f.kind, f.id, f.line) for f in result.blocking] == [
        (FindingKind.SECRET, "aws-access-key-id", 3)
    ]
    assert [i.finding.id for i in result.ignored] == ["mysecret"]
    assert result.blocking[0].describe() == "aws-access-key-id secret in deploy.sh:3"


def test_failed_dockerfile_check_blocks() -> None:
    result = evaluate(report("dockerfile.json"), config(), today=TODAY)

    [finding] = result.blocking
    assert finding.kind is FindingKind.MISCONFIGURATION
    assert finding.describe() == "DS-0002 in Dockerfile"


def test_blocking_is_most_severe_first() -> None:
    result = evaluate(report("pip.json"), config(fail_on=["MEDIUM", "HIGH"]), today=TODAY)

    assert [(f.severity.value, f.id) for f in result.blocking] == [
        ("HIGH", "CVE-2019-14806"),
        ("MEDIUM", "CVE-2020-28724"),
    ]
    assert result.blocking[0].describe() == "CVE-2019-14806 in Werkzeug 0.11 (fixed in 0.15.3)"


def test_unfixed_description() -> None:
    bash = next(f for f in findings(report("debian-buster.json")) if f.package == "bash")

    assert bash.describe() == "CVE-2019-18276 in bash 5.0-4 (no fix yet)"


REPORT_NAMES = sorted(p.name for p in TRIVY_REPORTS.glob("*.json") if ".sarif." not in p.name)
ALL_IDS = sorted({f.id for name in REPORT_NAMES for f in findings(report(name))})


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(REPORT_NAMES),
    fail_on=st.lists(st.sampled_from(SEVERITIES), unique=True),
    ignore_unfixed=st.booleans(),
    ignore=st.lists(
        st.tuples(st.sampled_from(ALL_IDS), st.integers(min_value=-3, max_value=3)),
        unique_by=lambda t: t[0],
    ),
)
def test_every_finding_at_a_blocking_severity_lands_in_exactly_one_bucket(
    name: str, fail_on: list[str], ignore_unfixed: bool, ignore: list[tuple[str, int]]
) -> None:
    entries = [IgnoreEntry(id=i, reason="r", expires=TODAY + timedelta(days=d)) for i, d in ignore]
    options = config(fail_on=fail_on, ignore_unfixed=ignore_unfixed, ignore=entries)
    found = findings(report(name))

    result = evaluate(report(name), options, today=TODAY)

    at_gate = [f for f in found if f.severity.value in fail_on]
    buckets = list(result.blocking) + [i.finding for i in result.ignored] + list(result.unfixed)
    assert sorted(buckets, key=repr) == sorted(at_gate, key=repr)
    assert result.total == len(found)
    assert {e.id for e in result.expired} == {i for i, d in ignore if d < 0}
    assert all(f.id not in {i for i, d in ignore if d >= 0} for f in result.blocking)
