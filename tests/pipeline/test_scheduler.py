from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

from conveyor.errors import PolicyError, StageTimeoutError
from conveyor.pipeline.graph import Outputs, Pipeline, Stage, StageFunction, StageInputs
from conveyor.pipeline.hooks import NoHooks, RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status
from conveyor.pipeline.scheduler import Interruption, run_pipeline

pytestmark = pytest.mark.anyio


class Probe:
    """Records when stages start and end, and how many run at once."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.running = 0
        self.peak = 0

    def sleeper(
        self, name: str, seconds: float = 0.05, outputs: Outputs | None = None
    ) -> StageFunction:
        async def run(inputs: StageInputs) -> Outputs | None:
            self.events.append(f"start {name}")
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await anyio.sleep(seconds)
            finally:
                self.running -= 1
            self.events.append(f"end {name}")
            return outputs

        return run

    def failing(self, name: str, error: Exception, seconds: float = 0.0) -> StageFunction:
        async def run(inputs: StageInputs) -> Outputs | None:
            self.events.append(f"start {name}")
            await anyio.sleep(seconds)
            raise error

        return run


def by_name(result: PipelineResult) -> dict[str, tuple[Status, str]]:
    return {r.name: (r.status, r.reason) for r in result.results}


async def test_ready_stages_run_concurrently_within_capacity() -> None:
    probe = Probe()
    stages = [Stage(f"s{i}", probe.sleeper(f"s{i}", 0.05)) for i in range(6)]
    result = await run_pipeline(Pipeline(stages), capacity=3)
    assert result.ok
    assert probe.peak == 3
    # six stages, three at a time: each of the last three started after one of the first ended
    starts = [e for e in probe.events if e.startswith("start")]
    assert probe.events.index(starts[3]) > probe.events.index(
        next(e for e in probe.events if e.startswith("end"))
    )


async def test_outputs_flow_to_dependents() -> None:
    seen: dict[str, str] = {}

    async def build(inputs: StageInputs) -> Outputs:
        return {"image.id": "abc"}

    async def scan(inputs: StageInputs) -> Outputs:
        seen.update(inputs["build"])
        return {"report": "ok"}

    result = await run_pipeline(
        Pipeline([Stage("build", build), Stage("scan", scan, needs=("build",))])
    )
    assert seen == {"image.id": "abc"}
    assert result["scan"].outputs == {"report": "ok"}
    assert result["build"].attempts == 1


async def test_failure_skips_every_dependent_with_the_reason() -> None:
    probe = Probe()
    pipeline = Pipeline(
        [
            Stage("test", probe.failing("test", RuntimeError("2 tests failed"))),
            Stage("build", probe.sleeper("build", 0.05)),
            Stage("publish", probe.sleeper("publish"), needs=("test", "build")),
            Stage("manifest", probe.sleeper("manifest"), needs=("publish",)),
            Stage("report", probe.sleeper("report", 0.0), needs=("publish",), always=True),
        ]
    )
    result = await run_pipeline(pipeline, on_failure="finish")
    assert not result.ok
    assert by_name(result) == {
        "test": (Status.FAILED, "2 tests failed"),
        "build": (Status.SUCCESS, ""),
        "publish": (Status.SKIPPED, "dependency 'test' failed"),
        "manifest": (Status.SKIPPED, "dependency 'publish' was skipped"),
        "report": (Status.SUCCESS, ""),
    }
    assert "start publish" not in probe.events
    assert isinstance(result["test"].error, RuntimeError)
    assert result.first_failure is not None
    assert result.first_failure.name == "test"


async def test_cancel_policy_cancels_running_stages() -> None:
    probe = Probe()
    pipeline = Pipeline(
        [
            Stage("fast-fail", probe.failing("fast-fail", RuntimeError("no"), 0.01)),
            Stage("slow", probe.sleeper("slow", 5.0)),
            Stage("cleanup", probe.sleeper("cleanup", 0.0), needs=("slow",), always=True),
        ]
    )
    with anyio.fail_after(2):
        result = await run_pipeline(pipeline, on_failure="cancel")
    assert by_name(result)["slow"] == (Status.CANCELLED, "cancelled after stage 'fast-fail' failed")
    assert by_name(result)["cleanup"] == (Status.SUCCESS, "")
    assert "end slow" not in probe.events


async def test_finish_policy_lets_running_stages_finish_but_starts_no_new_ones() -> None:
    probe = Probe()
    pipeline = Pipeline(
        [
            Stage("fail", probe.failing("fail", RuntimeError("no"), 0.01)),
            Stage("slow", probe.sleeper("slow", 0.1)),
            Stage("after-slow", probe.sleeper("after-slow"), needs=("slow",)),
        ]
    )
    result = await run_pipeline(pipeline, on_failure="finish")
    assert by_name(result) == {
        "fail": (Status.FAILED, "no"),
        "slow": (Status.SUCCESS, ""),
        "after-slow": (Status.SKIPPED, "not started: stage 'fail' failed (fail-fast)"),
    }


async def test_stages_waiting_for_capacity_do_not_start_after_a_failure() -> None:
    probe = Probe()
    pipeline = Pipeline(
        [
            Stage("fail", probe.failing("fail", RuntimeError("no"), 0.01)),
            Stage("queued", probe.sleeper("queued")),
        ]
    )
    result = await run_pipeline(pipeline, capacity=1)
    assert by_name(result)["queued"] == (
        Status.SKIPPED,
        "not started: stage 'fail' failed (fail-fast)",
    )


async def test_retries_with_exponential_backoff_then_success() -> None:
    calls = 0
    delays: list[float] = []

    async def flaky(inputs: StageInputs) -> Outputs:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("registry hiccup")
        return {"attempt": str(calls)}

    async def record(seconds: float) -> None:
        delays.append(seconds)

    stage = Stage("publish", flaky, retries=3, backoff=1.0)
    result = await run_pipeline(Pipeline([stage]), sleep=record)
    assert result["publish"].status is Status.SUCCESS
    assert result["publish"].attempts == 3
    assert len(delays) == 2
    assert 0.8 <= delays[0] <= 1.2
    assert 1.6 <= delays[1] <= 2.4


async def test_retries_run_out_and_the_last_error_is_the_reason() -> None:
    async def always_down(inputs: StageInputs) -> Outputs:
        raise ConnectionError("registry down")

    async def no_wait(seconds: float) -> None:
        return None

    result = await run_pipeline(Pipeline([Stage("publish", always_down, retries=2)]), sleep=no_wait)
    assert result["publish"].status is Status.FAILED
    assert result["publish"].attempts == 3
    assert result["publish"].reason == "registry down"


async def test_permanent_errors_are_not_retried() -> None:
    async def latest(inputs: StageInputs) -> Outputs:
        raise PolicyError("r/hello:latest", "mutable tag 'latest'")

    result = await run_pipeline(Pipeline([Stage("publish", latest, retries=5)]))
    assert result["publish"].attempts == 1
    assert result["publish"].reason == "image 'r/hello:latest' refused: mutable tag 'latest'"


async def test_timeout_fails_the_attempt_and_is_retried() -> None:
    probe = Probe()

    async def no_wait(seconds: float) -> None:
        return None

    stage = Stage("hang", probe.sleeper("hang", 10.0), timeout=0.05, retries=1)
    with anyio.fail_after(2):
        result = await run_pipeline(Pipeline([stage]), sleep=no_wait)
    assert result["hang"].status is Status.FAILED
    assert result["hang"].attempts == 2
    assert isinstance(result["hang"].error, StageTimeoutError)
    assert result["hang"].reason == "stage 'hang' ran past its timeout of 0.05s"


async def test_skip_on_request_skips_dependents_but_not_always_stages() -> None:
    probe = Probe()
    pipeline = Pipeline(
        [
            Stage("build", probe.sleeper("build", 0.0)),
            Stage("smoke", probe.sleeper("smoke", 0.0), needs=("build",)),
            Stage("publish", probe.sleeper("publish", 0.0), needs=("smoke",)),
            Stage("report", probe.sleeper("report", 0.0), needs=("publish",), always=True),
        ]
    )
    result = await run_pipeline(pipeline, skip=["smoke"])
    assert result.ok
    assert by_name(result) == {
        "build": (Status.SUCCESS, ""),
        "smoke": (Status.SKIPPED, "requested with --skip"),
        "publish": (Status.SKIPPED, "dependency 'smoke' was skipped"),
        "report": (Status.SUCCESS, ""),
    }


async def test_only_runs_the_stage_with_its_dependencies() -> None:
    probe = Probe()
    pipeline = Pipeline(
        [
            Stage("test", probe.sleeper("test", 0.0)),
            Stage("build", probe.sleeper("build", 0.0)),
            Stage("scan", probe.sleeper("scan", 0.0), needs=("build",)),
        ]
    )
    result = await run_pipeline(pipeline, only=["scan"])
    assert sorted(probe.events) == ["end build", "end scan", "start build", "start scan"]
    assert by_name(result)["test"] == (Status.SKIPPED, "not selected by --only scan")


class RecordingHooks(NoHooks):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_run_start(self, run: RunInfo) -> None:
        self.calls.append(f"run start {run.run_id} {','.join(run.stages)}")

    def on_run_end(self, run: RunInfo, result: PipelineResult) -> None:
        self.calls.append(f"run end ok={result.ok}")

    def on_stage_start(self, stage: str) -> None:
        self.calls.append(f"stage start {stage}")

    def on_stage_end(self, result: StageResult) -> None:
        self.calls.append(f"stage end {result.name} {result.status.value}")

    @contextmanager
    def attempt(self, stage: str, number: int) -> Iterator[None]:
        self.calls.append(f"attempt {stage} {number}")
        try:
            yield
        except Exception as error:
            self.calls.append(f"attempt {stage} {number} raised {error}")
            raise


async def test_hooks_see_run_stages_and_attempts_in_order() -> None:
    attempts = 0

    async def flaky(inputs: StageInputs) -> Outputs:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("once")
        return {}

    async def no_wait(seconds: float) -> None:
        return None

    async def ok(inputs: StageInputs) -> None:
        return None

    hooks = RecordingHooks()
    pipeline = Pipeline([Stage("a", flaky, retries=1), Stage("b", ok, needs=("a",))])
    await run_pipeline(pipeline, hooks=hooks, run_id="r1", sleep=no_wait)
    assert hooks.calls == [
        "run start r1 a,b",
        "stage start a",
        "attempt a 1",
        "attempt a 1 raised once",
        "attempt a 2",
        "stage end a success",
        "stage start b",
        "attempt b 1",
        "stage end b success",
        "run end ok=True",
    ]


async def test_a_failure_at_the_root_of_a_long_chain_skips_it_all_without_recursion() -> None:
    async def fail(inputs: StageInputs) -> Outputs:
        raise RuntimeError("root broke")

    async def ok(inputs: StageInputs) -> None:
        return None

    n = 5_000  # deeper than Python's default recursion limit
    stages = [Stage("s0", fail)] + [Stage(f"s{i}", ok, needs=(f"s{i - 1}",)) for i in range(1, n)]
    result = await run_pipeline(Pipeline(stages))
    assert [r.status for r in result.results].count(Status.SKIPPED) == n - 1
    assert result[f"s{n - 1}"].reason == f"dependency 's{n - 2}' was skipped"


async def test_an_interruption_cancels_running_stages_starts_none_and_runs_always_ones() -> None:
    probe = Probe()
    interruption = Interruption()
    report_saw: list[dict[str, str]] = []

    async def report(inputs: StageInputs) -> Outputs:
        report_saw.append(dict.fromkeys(inputs, "ran"))
        return {"written": "yes"}

    pipeline = Pipeline(
        [
            Stage("fast", probe.sleeper("fast", 0.01)),
            Stage("slow", probe.sleeper("slow", 30)),
            Stage("queued", probe.sleeper("queued")),  # waits for capacity
            Stage("after", probe.sleeper("after"), needs=("fast", "slow")),
            Stage("report", report, needs=("queued", "after"), always=True),
        ]
    )

    async def signal_soon() -> None:
        await anyio.sleep(0.3)
        interruption.interrupt("interrupted by SIGTERM")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(signal_soon)
            result = await run_pipeline(pipeline, capacity=1, interruption=interruption)
    statuses = {r.name: (r.status, r.reason) for r in result.results}
    assert statuses == {
        "fast": (Status.SUCCESS, ""),
        "slow": (Status.CANCELLED, "cancelled: interrupted by SIGTERM"),
        # it would have run: cancelled; what would be skipped anyway keeps its reason
        "queued": (Status.CANCELLED, "not started: interrupted by SIGTERM"),
        "after": (Status.SKIPPED, "dependency 'slow' was cancelled"),
        "report": (Status.SUCCESS, ""),
    }
    assert "end slow" not in probe.events
    assert "start queued" not in probe.events
    assert report_saw == [{"fast": "ran"}]
    assert not result.ok


async def test_an_interruption_before_the_run_starts_nothing_but_always_stages() -> None:
    probe = Probe()
    interruption = Interruption()
    interruption.interrupt("interrupted by SIGINT")
    interruption.interrupt("interrupted by SIGHUP")  # the first reason wins
    pipeline = Pipeline(
        [
            Stage("test", probe.sleeper("test")),
            Stage("report", probe.sleeper("report"), needs=("test",), always=True),
        ]
    )
    result = await run_pipeline(pipeline, interruption=interruption)
    assert [(r.name, r.status, r.reason) for r in result.results] == [
        ("test", Status.CANCELLED, "not started: interrupted by SIGINT"),
        ("report", Status.SUCCESS, ""),
    ]
    assert probe.events == ["start report", "end report"]


async def test_meanwhile_starts_after_the_first_stages_and_ends_with_the_run() -> None:
    probe = Probe()
    stages = [Stage("a", probe.sleeper("a", 0.05)), Stage("b", probe.sleeper("b"), needs=("a",))]

    async def meanwhile() -> None:
        probe.events.append("meanwhile")
        await anyio.sleep_forever()  # cancelled when the last stage has ended

    with anyio.fail_after(5):
        result = await run_pipeline(Pipeline(stages), meanwhile=meanwhile)

    assert result.ok
    assert probe.events == ["start a", "meanwhile", "end a", "start b", "end b"]
