"""What a run prints: timestamped lines for CI logs, the stage table."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from conveyor.cli.display import PlainLog, result_table
from conveyor.pipeline.hooks import RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status


def clock() -> datetime:
    return datetime(2026, 11, 26, 4, 5, 6, 789000, tzinfo=UTC)


def test_plain_log_writes_one_timestamped_line_per_event() -> None:
    stream = io.StringIO()
    log = PlainLog(stream, clock=clock)
    info = RunInfo("r1", ("build", "publish"))
    log.on_run_start(info)
    log.on_stage_start("build")
    with log.attempt("build", 1), log.attempt("build", 2):
        pass
    log.on_stage_end(
        StageResult("build", Status.SUCCESS, duration=2.25, attempts=2, outputs={"image.id": "abc"})
    )
    log.on_stage_end(StageResult("publish", Status.SKIPPED, "dependency 'scan' failed"))
    failed = StageResult("scan", Status.FAILED, "2 findings", duration=1.0, attempts=1)
    log.on_run_end(info, PipelineResult("r1", (failed,), 3.5))
    assert stream.getvalue().splitlines() == [
        "2026-11-26T04:05:06.789Z run r1 started: build, publish",
        "2026-11-26T04:05:06.789Z build: started",
        "2026-11-26T04:05:06.789Z build: attempt 2",
        "2026-11-26T04:05:06.789Z build: success in 2.2s",
        "2026-11-26T04:05:06.789Z publish: skipped (dependency 'scan' failed)",
        "2026-11-26T04:05:06.789Z run r1 failed in 3.5s",
    ]


def test_result_table_shows_status_time_tries_and_note() -> None:
    results = {
        "build": StageResult("build", Status.SUCCESS, duration=1.5, attempts=1),
        "publish": StageResult(
            "publish",
            Status.SUCCESS,
            duration=0.5,
            attempts=2,
            outputs={"image.ref": "r/hello:abc@sha256:1"},
        ),
    }
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(result_table(("build", "scan", "publish", "manifest"), results, {"scan": 0.0}))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = [line.rstrip() for line in text.splitlines()]
    assert any(
        line.split() == ["build", "│", "success", "│", "1.5s", "│", "1", "│"] for line in lines
    )
    assert any("scan" in line and "running" in line for line in lines)
    assert any("publish" in line and "image.ref=r/hello:abc@sha256:1" in line for line in lines)
    assert any("manifest" in line and "waiting" in line for line in lines)
