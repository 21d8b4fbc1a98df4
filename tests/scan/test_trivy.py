"""The Trivy adapter, driven through the Trivy replay double (tests/doubles/trivy).

Trivy and its vulnerability database cannot be fetched here, so the process
boundary is a double: a real subprocess that records the argv it was given and
replays a real recorded Trivy report.  These tests assert what was sent to it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from conveyor.config.models import IgnoreEntry, ScanStageConfig
from conveyor.engines.port import CacheMount
from conveyor.errors import CommandFailedError, ScanReportError, ToolMissingError
from conveyor.scan.report import Severity
from conveyor.scan.trivy import container_spec, scan_tarball, trivy_argv

from .conftest import TRIVY_REPORTS

TRIVY_DOUBLE = Path(__file__).parents[1] / "doubles" / "trivy"
TODAY = date(2025, 6, 1)
ALL = "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL"

pytestmark = pytest.mark.anyio


@pytest.fixture
def double_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "trivy-double.jsonl"
    monkeypatch.setenv("TRIVY_DOUBLE_LOG", str(log))
    monkeypatch.setenv("TRIVY_DOUBLE_REPORT", str(TRIVY_REPORTS / "debian-buster.json"))
    return log


@pytest.fixture
def tarball(tmp_path: Path) -> Path:
    """A small real OCI-layout image archive."""
    path = tmp_path / "image.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in {
            "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
            "index.json": b'{"schemaVersion": 2, "manifests": []}',
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sent(log: Path) -> list[list[str]]:
    return [json.loads(line)["argv"] for line in log.read_text().splitlines()]


async def test_scan_sends_trivys_image_command_and_gates_the_report(
    tmp_path: Path, tarball: Path, double_log: Path
) -> None:
    out = tmp_path / "scan"

    outcome = await scan_tarball(
        tarball,
        out,
        ScanStageConfig.model_validate({"timeout": "10m"}),
        executable=str(TRIVY_DOUBLE),
        today=TODAY,
    )

    assert sent(double_log) == [
        [
            "image",
            "--input",
            str(tarball),
            "--format",
            "json",
            "--output",
            str(out / "trivy.json"),
            "--quiet",
            "--scanners",
            "vuln,secret",
            "--severity",
            ALL,
            "--timeout",
            "600s",
        ]
    ]
    assert outcome.json_path == out / "trivy.json"
    assert outcome.sarif_path == out / "trivy.sarif"
    assert [v.id for _, v in outcome.report.vulnerabilities()] == [
        "CVE-2019-18276",
        "CVE-2019-18224",
    ]
    assert outcome.gate.blocking_ids == ("CVE-2019-18224",)
    error = outcome.gate.error("myacr.azurecr.io/hello:abc")
    assert error is not None
    assert "CVE-2019-18224" in str(error)
    sarif = json.loads(outcome.sarif_path.read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == [
        "CVE-2019-18276",
        "CVE-2019-18224",
    ]
    assert outcome.summary().splitlines()[1] == "Gate (fail on CRITICAL, HIGH): FAILED, 1 blocking"


async def test_ignore_unfixed_and_cache_dir_are_sent(
    tmp_path: Path, tarball: Path, double_log: Path
) -> None:
    options = ScanStageConfig(ignore_unfixed=True, sarif="reports/scan.sarif")
    cache = tmp_path / "trivy-cache"

    outcome = await scan_tarball(
        tarball,
        tmp_path / "out",
        options,
        executable=str(TRIVY_DOUBLE),
        cache_dir=cache,
        today=TODAY,
    )

    [argv] = sent(double_log)
    assert argv[-3:] == ["--ignore-unfixed", "--cache-dir", str(cache)]
    # Trivy dropped the unfixed bash finding, as the real one does with --ignore-unfixed.
    assert [v.package for _, v in outcome.report.vulnerabilities()] == ["libidn2-0"]
    assert outcome.sarif_path == tmp_path / "out" / "reports" / "scan.sarif"
    assert outcome.sarif_path.is_file()


async def test_narrowed_severities_are_sent(
    tmp_path: Path, tarball: Path, double_log: Path
) -> None:
    outcome = await scan_tarball(
        tarball,
        tmp_path / "out",
        ScanStageConfig(),
        executable=str(TRIVY_DOUBLE),
        severities=["HIGH", "CRITICAL"],
        today=TODAY,
    )

    [argv] = sent(double_log)
    assert argv[argv.index("--severity") + 1] == "HIGH,CRITICAL"
    assert outcome.gate.counts[Severity.LOW] == 0


async def test_ignore_list_applies_to_the_scanned_report(
    tmp_path: Path, tarball: Path, double_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIVY_DOUBLE_REPORT", str(TRIVY_REPORTS / "pip.json"))
    options = ScanStageConfig(
        ignore=[IgnoreEntry(id="CVE-2019-14806", reason="debugger off", expires=TODAY)]
    )

    outcome = await scan_tarball(
        tarball, tmp_path / "out", options, executable=str(TRIVY_DOUBLE), today=TODAY
    )

    assert outcome.gate.passed
    assert [i.finding.id for i in outcome.gate.ignored] == ["CVE-2019-14806"]
    assert len(sent(double_log)) == 1


async def test_missing_executable_is_a_tool_missing_error(tmp_path: Path, tarball: Path) -> None:
    with pytest.raises(ToolMissingError) as info:
        await scan_tarball(
            tarball, tmp_path / "out", ScanStageConfig(), executable="trivy-not-installed-here"
        )

    assert info.value.tool == "trivy-not-installed-here"
    assert "install Trivy" in str(info.value)
    assert "stages.scan.trivy" in str(info.value)


async def test_non_executable_file_is_a_tool_missing_error(tmp_path: Path, tarball: Path) -> None:
    fake = tmp_path / "trivy"
    fake.write_text("not a program")

    with pytest.raises(ToolMissingError, match="is not executable"):
        await scan_tarball(tarball, tmp_path / "out", ScanStageConfig(), executable=str(fake))


async def test_trivy_failure_carries_argv_exit_code_and_stderr(
    tmp_path: Path, double_log: Path
) -> None:
    not_a_tar = tmp_path / "image.tar"
    not_a_tar.write_text("this is not an archive")

    with pytest.raises(CommandFailedError) as info:
        await scan_tarball(
            not_a_tar, tmp_path / "out", ScanStageConfig(), executable=str(TRIVY_DOUBLE)
        )

    error = info.value
    assert error.exit_code == 1
    assert error.command[:4] == (str(TRIVY_DOUBLE), "image", "--input", str(not_a_tar))
    assert "as a Docker or OCI archive" in error.stderr
    assert "as a Docker or OCI archive" in str(error)
    assert len(sent(double_log)) == 1


async def test_unreadable_output_is_a_report_error(
    tmp_path: Path, tarball: Path, double_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"SchemaVersion": 2, "Results": [')
    monkeypatch.setenv("TRIVY_DOUBLE_REPORT", str(broken))
    out = tmp_path / "out"

    with pytest.raises(ScanReportError) as info:
        await scan_tarball(tarball, out, ScanStageConfig(), executable=str(TRIVY_DOUBLE))

    assert info.value.path == out / "trivy.json"
    assert len(sent(double_log)) == 1


def test_argv_of_a_configured_stage() -> None:
    options = ScanStageConfig(ignore_unfixed=True, timeout=90)

    argv = trivy_argv(
        "/opt/trivy", Path("/w/image.tar"), Path("/w/out.json"), options, cache_dir=Path("/c")
    )

    assert argv == [
        "/opt/trivy",
        "image",
        "--input",
        "/w/image.tar",
        "--format",
        "json",
        "--output",
        "/w/out.json",
        "--quiet",
        "--scanners",
        "vuln,secret",
        "--severity",
        ALL,
        "--timeout",
        "90s",
        "--ignore-unfixed",
        "--cache-dir",
        "/c",
    ]


async def test_stage_env_reaches_the_local_trivy(tmp_path: Path, tarball: Path) -> None:
    log = tmp_path / "from-stage-env.jsonl"
    options = ScanStageConfig(
        env={"TRIVY_DOUBLE_REPORT": str(TRIVY_REPORTS / "pip.json"), "TRIVY_DOUBLE_LOG": str(log)}
    )

    outcome = await scan_tarball(
        tarball, tmp_path / "out", options, executable=str(TRIVY_DOUBLE), today=TODAY
    )

    assert len(sent(log)) == 1
    assert outcome.gate.blocking_ids == ("CVE-2019-14806",)


async def test_a_previous_report_is_removed_before_trivy_runs(
    tmp_path: Path, double_log: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "trivy.json").write_text((TRIVY_REPORTS / "alpine-310.json").read_text())
    not_a_tar = tmp_path / "image.tar"
    not_a_tar.write_text("this is not an archive")

    with pytest.raises(CommandFailedError):
        await scan_tarball(not_a_tar, out, ScanStageConfig(), executable=str(TRIVY_DOUBLE))

    assert not (out / "trivy.json").exists()
    assert len(sent(double_log)) == 1


def test_container_spec_mounts_the_tarballs_directory_and_the_db_cache(tmp_path: Path) -> None:
    tarball = tmp_path / "scan" / "image.tar"
    bundle = tmp_path / "ca.crt"
    options = ScanStageConfig(
        ignore_unfixed=True,
        timeout=90,
        cache="trivy-db-ci",
        env={"TRIVY_DB_REPOSITORY": "mirror.example.com/trivy-db"},
    )

    spec = container_spec(
        tarball, options, image="aquasec/trivy:0.69.1", severities=("HIGH",), ca_bundle=bundle
    )

    assert spec.image == "aquasec/trivy:0.69.1"
    assert list(spec.command) == trivy_argv(
        "trivy",
        PurePosixPath("/scan/image.tar"),
        PurePosixPath("/scan/trivy.json"),
        options,
        cache_dir=PurePosixPath("/root/.cache/trivy"),
        severities=("HIGH",),
    )
    assert list(spec.command) == [
        "trivy",
        "image",
        "--input",
        "/scan/image.tar",
        "--format",
        "json",
        "--output",
        "/scan/trivy.json",
        "--quiet",
        "--scanners",
        "vuln,secret",
        "--severity",
        "HIGH",
        "--timeout",
        "90s",
        "--ignore-unfixed",
        "--cache-dir",
        "/root/.cache/trivy",
    ]
    assert (spec.source, spec.workdir) == (tmp_path / "scan", "/scan")
    assert spec.caches == (CacheMount("trivy-db-ci", "/root/.cache/trivy"),)
    assert spec.env == {"TRIVY_DB_REPOSITORY": "mirror.example.com/trivy-db"}
    assert (spec.outputs, spec.export_dir) == (("trivy.json",), tmp_path / "scan")
    assert spec.ca_bundle == bundle
    assert spec.secrets == ()


def run_double(*args: str, env: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TRIVY_DOUBLE), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["image", "--input", "x.tar", "--exit-on-eol", "1"], "Error: unknown flag: --exit-on-eol"),
        (["image", "--input"], "Error: flag needs an argument: --input"),
        (["fs", "."], 'Error: unknown command "fs" for "trivy"'),
        (["image", "--input", "/nonexistent.tar"], "unable to open /nonexistent.tar"),
    ],
)
def test_double_refuses_what_trivy_refuses(args: list[str], message: str) -> None:
    result = run_double(*args)

    assert result.returncode == 1
    assert message in result.stderr
