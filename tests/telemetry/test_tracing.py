"""TracingHooks driven like the scheduler drives them, exported over real OTLP/HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conveyor.errors import CommandFailedError
from conveyor.pipeline.graph import Pipeline, Stage
from conveyor.pipeline.hooks import RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult
from conveyor.pipeline.result import Status as StageStatus
from conveyor.pipeline.scheduler import run_pipeline
from conveyor.process import run, run_process
from conveyor.process.conversation import conversation
from conveyor.secrets import Redactor, Secret
from conveyor.telemetry.setup import start_tracing
from conveyor.telemetry.store import RunStore
from conveyor.telemetry.tracing import PROCESS_COMMAND, PROCESS_EXIT_CODE

from .conftest import OtlpReceiver
from .helpers import DIGEST, RUN_ID, SECRET, SHA, attributes, drive_run

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

OK = Status.STATUS_CODE_OK
ERROR = Status.STATUS_CODE_ERROR
UNSET = Status.STATUS_CODE_UNSET

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def otlp_env(receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
        **extra,
    }


def by_path(spans: list[Span]) -> dict[str, Span]:
    """Spans keyed by the names from the root down: ``conveyor.run/stage x/attempt 1``."""
    ids = {s.span_id: s for s in spans}

    def path(span: Span) -> str:
        parent = ids.get(span.parent_span_id)
        return span.name if parent is None else f"{path(parent)}/{span.name}"

    paths = [path(s) for s in spans]
    assert len(paths) == len(set(paths)), f"a span is there twice: {sorted(paths)}"
    return dict(zip(paths, spans, strict=True))


async def traced_run(receiver: OtlpReceiver, tmp_path: Path, **env: str) -> list[Exception]:
    tracing = start_tracing(
        environ=otlp_env(receiver, **env),
        runs_dir=tmp_path / "runs",
        redactor=Redactor([Secret("REGISTRY_TOKEN", SECRET)]),
    )
    _, escaped = await drive_run(tracing.hooks, tracing.provider.get_tracer("stage-code"))
    # on_run_end flushed and shut the provider down: every span has arrived.
    return escaped


async def test_run_stage_and_attempt_spans_nest_with_stage_code_under_its_attempt(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    await traced_run(otlp_receiver, tmp_path)

    spans = by_path(otlp_receiver.spans())

    assert sorted(spans) == [
        "conveyor.run",
        "conveyor.run/stage build",
        "conveyor.run/stage build/attempt 1",
        "conveyor.run/stage build/attempt 1/build work 1",
        "conveyor.run/stage build/attempt 1/build work 1/build child 1",
        "conveyor.run/stage build/attempt 2",
        "conveyor.run/stage build/attempt 2/build work 2",
        "conveyor.run/stage build/attempt 2/build work 2/build child 2",
        "conveyor.run/stage scan",
        "conveyor.run/stage scan/attempt 1",
        "conveyor.run/stage scan/attempt 1/scan work 1",
        "conveyor.run/stage scan/attempt 1/scan work 1/scan child 1",
        "conveyor.run/stage scan/attempt 2",
        "conveyor.run/stage scan/attempt 2/scan work 2",
        "conveyor.run/stage scan/attempt 2/scan work 2/scan child 2",
        "conveyor.run/stage test",
        "conveyor.run/stage test/attempt 1",
        "conveyor.run/stage test/attempt 1/test work 1",
        "conveyor.run/stage test/attempt 1/test work 1/test child 1",
    ]
    assert spans["conveyor.run"].parent_span_id == b""
    assert len({s.trace_id for s in spans.values()}) == 1


async def test_span_attributes_and_statuses(otlp_receiver: OtlpReceiver, tmp_path: Path) -> None:
    await traced_run(otlp_receiver, tmp_path)
    spans = by_path(otlp_receiver.spans())

    run = spans["conveyor.run"]
    assert attributes(run) == {
        "conveyor.run.id": RUN_ID,
        "conveyor.run.stages": ("test", "build", "scan", "publish"),
        "conveyor.app": "hello",
        "conveyor.source.sha": SHA,
        "conveyor.status": "failed",
    }
    assert run.status.code == ERROR
    assert run.status.message == (
        "stage 'scan' failed: command failed with exit code 1: trivy image (***)"
    )

    assert attributes(spans["conveyor.run/stage build"]) == {
        "conveyor.stage": "build",
        "conveyor.status": "success",
        "conveyor.attempts": 2,
        "conveyor.reason": "",
        "conveyor.output.image.ref": f"registry.local/hello:{SHA}",
        "conveyor.output.image.digest": DIGEST,
        "conveyor.output.cache.hit": "true",
        "conveyor.output.push.url": "https://***@registry.local/v2/",
    }
    assert spans["conveyor.run/stage build"].status.code == OK

    scan = spans["conveyor.run/stage scan"]
    assert attributes(scan)["conveyor.status"] == "failed"
    assert attributes(scan)["conveyor.attempts"] == 2
    assert scan.status.code == ERROR
    assert scan.status.message == "command failed with exit code 1: trivy image (***)"

    # publish never started: no 0 s span claims it ran, the run span says why
    (skipped,) = [e for e in run.events if e.name == "stage skipped"]
    assert attributes(skipped) == {
        "conveyor.stage": "publish",
        "conveyor.status": "skipped",
        "conveyor.reason": "dependency 'scan' failed",
    }

    failed = spans["conveyor.run/stage build/attempt 1"]
    assert attributes(failed) == {
        "conveyor.stage": "build",
        "conveyor.attempt": 1,
        "conveyor.status": "failed",
    }
    assert failed.status.code == ERROR
    assert failed.status.message == "command failed with exit code 1: trivy image"
    [event] = failed.events
    assert event.name == "exception"
    event_attributes = {kv.key: kv.value.string_value for kv in event.attributes}
    assert event_attributes["exception.type"] == "conveyor.errors.CommandFailedError"
    assert event_attributes["exception.message"].endswith("  | auth failed for token ***")
    assert "raise CommandFailedError(" in event_attributes["exception.stacktrace"]

    succeeded = spans["conveyor.run/stage build/attempt 2"]
    assert attributes(succeeded)["conveyor.status"] == "success"
    assert succeeded.status.code == OK
    assert list(succeeded.events) == []


async def test_an_attempt_passes_the_stage_exception_through(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    escaped = await traced_run(otlp_receiver, tmp_path)

    # build fails once, scan twice: each error comes out of attempt() unchanged
    assert [e.stderr for e in escaped] == [f"auth failed for token {SECRET}"] * 3  # type: ignore[attr-defined]


async def test_a_secret_never_appears_in_any_exported_byte(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    await traced_run(otlp_receiver, tmp_path)

    raw = otlp_receiver.raw()
    assert len(otlp_receiver.spans()) == 19
    assert SECRET.encode() not in raw
    # the stage code's own attribute reached the collector, masked
    assert b"login --password ***" in raw
    stored = (tmp_path / "runs" / RUN_ID / "spans.jsonl").read_bytes()
    assert stored.count(b"\n") == 19
    assert SECRET.encode() not in stored
    assert b"login --password ***" in stored


async def test_traceparent_becomes_the_run_span_parent(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    await traced_run(
        otlp_receiver,
        tmp_path,
        TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-01",
        TRACESTATE="dagger=abc,vendor=1",
    )
    spans = by_path(otlp_receiver.spans())

    run = spans["conveyor.run"]
    assert run.trace_id.hex() == TRACE_ID
    assert run.parent_span_id.hex() == PARENT_ID
    assert run.trace_state == "dagger=abc,vendor=1"
    assert {s.trace_id.hex() for s in spans.values()} == {TRACE_ID}


async def test_an_unsampled_traceparent_keeps_spans_from_the_collector_but_not_the_store(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    await traced_run(otlp_receiver, tmp_path, TRACEPARENT=f"00-{TRACE_ID}-{PARENT_ID}-00")

    assert otlp_receiver.received == []
    run = RunStore(tmp_path / "runs").load(RUN_ID)
    assert len(run.spans) == 19
    assert run.root is not None
    assert run.root.trace_id == TRACE_ID
    assert run.root.parent_id == PARENT_ID


async def test_a_cancelled_attempt_is_marked_cancelled_not_failed(tmp_path: Path) -> None:
    tracing = start_tracing(environ={}, runs_dir=tmp_path)
    hooks = tracing.hooks
    info = RunInfo("cancelled-run", ("deploy",))
    hooks.on_run_start(info)
    hooks.on_stage_start("deploy")
    with anyio.CancelScope() as scope:
        with hooks.attempt("deploy", 1):
            scope.cancel()
            await anyio.sleep(1)
    assert scope.cancelled_caught
    result = StageResult("deploy", StageStatus.CANCELLED, "cancelled after stage 'x' failed")
    hooks.on_stage_end(result)
    hooks.on_run_end(info, PipelineResult("cancelled-run", (result,), 0.1))

    spans = {s.name: s for s in RunStore(tmp_path).load("cancelled-run").spans}
    assert spans["attempt 1"].attributes["conveyor.status"] == "cancelled"
    assert spans["attempt 1"].status == "unset"
    assert spans["stage deploy"].attributes["conveyor.status"] == "cancelled"
    assert spans["conveyor.run"].status == "error"
    assert spans["conveyor.run"].status_message == "a stage was cancelled"


async def test_the_real_scheduler_through_the_hooks(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    calls: list[str] = []

    async def unit(_: object) -> dict[str, str]:
        calls.append("unit")
        return {}

    async def build(_: object) -> dict[str, str]:
        calls.append("build")
        return {"image.ref": "registry.local/hello:abc"}

    pipeline = Pipeline([Stage("unit", unit), Stage("build", build, needs=("unit",))])
    tracing = start_tracing(environ=otlp_env(otlp_receiver), runs_dir=tmp_path)
    result = await run_pipeline(
        pipeline, hooks=tracing.hooks, run_id="sched-1", attributes={"app": "hello"}
    )

    assert result.ok
    assert calls == ["unit", "build"]
    assert sorted(by_path(otlp_receiver.spans())) == [
        "conveyor.run",
        "conveyor.run/stage build",
        "conveyor.run/stage build/attempt 1",
        "conveyor.run/stage unit",
        "conveyor.run/stage unit/attempt 1",
    ]
    build_span = by_path(otlp_receiver.spans())["conveyor.run/stage build"]
    assert attributes(build_span)["conveyor.output.image.ref"] == "registry.local/hello:abc"


async def test_every_external_process_is_a_child_span_of_its_attempt(tmp_path: Path) -> None:
    token = Secret("PROC_TOKEN", "proc-s3cret-value")

    async def fetch(_: object) -> dict[str, str]:
        # async and sync (worker thread) callers, one failing with a secret in argv
        await run_process(["git", "--version"])
        await anyio.to_thread.run_sync(
            lambda: run([sys.executable, "-c", "pass"], name="python check")
        )
        with pytest.raises(CommandFailedError):
            await run_process(["git", "ls-remote", f"/nonexistent/{token.reveal()}"])
        return {}

    tracing = start_tracing(environ={}, runs_dir=tmp_path, redactor=Redactor([token]))
    with tracing:
        result = await run_pipeline(
            Pipeline([Stage("fetch", fetch)]), hooks=tracing.hooks, run_id="proc-1"
        )
    assert result.ok, result.results
    spans = RunStore(tmp_path).load("proc-1").spans
    by_name = {span.name: span for span in spans}
    attempt = by_name["attempt 1"]
    assert [s.name for s in spans if s.parent_id == attempt.span_id] == [
        "git",
        "python check",
        "git ls-remote",
    ]
    assert by_name["git"].attributes[PROCESS_COMMAND] == "git --version"
    assert by_name["git"].attributes[PROCESS_EXIT_CODE] == 0
    assert by_name["git"].attributes["conveyor.status"] == "success"
    failed = by_name["git ls-remote"]
    assert (failed.status, failed.attributes["conveyor.status"]) == ("error", "failed")
    assert failed.attributes[PROCESS_COMMAND] == "git ls-remote /nonexistent/***"
    assert token.reveal() not in (tmp_path / "proc-1" / "spans.jsonl").read_text()


async def test_a_conversation_is_one_span_beside_the_processes_started_while_it_lasts(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], cwd=repo)

    def reading() -> None:
        with conversation(["git", "cat-file", "--batch-check"], cwd=repo) as child:
            child.exchange(b"HEAD\n", lambda data: data.find(b"\n") + 1 or None)
            run(["git", "--version"])  # started while the conversation lasts
            child.exchange(b"HEAD\n", lambda data: data.find(b"\n") + 1 or None)

    async def stage(_: object) -> dict[str, str]:
        await anyio.to_thread.run_sync(reading)
        return {}

    tracing = start_tracing(environ={}, runs_dir=tmp_path / "runs")
    with tracing:
        result = await run_pipeline(
            Pipeline([Stage("read", stage)]), hooks=tracing.hooks, run_id="talk-1"
        )
    assert result.ok, result.results
    spans = RunStore(tmp_path / "runs").load("talk-1").spans
    by_name = {span.name: span for span in spans}
    attempt = by_name["attempt 1"]
    # both children of the attempt: the git started meanwhile is not nested in cat-file's span
    assert [s.name for s in spans if s.parent_id == attempt.span_id] == ["git", "git cat-file"]
    talk = by_name["git cat-file"]
    assert talk.attributes[PROCESS_COMMAND] == "git cat-file --batch-check"
    assert talk.attributes[PROCESS_EXIT_CODE] == 0
