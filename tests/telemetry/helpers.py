"""A hand-driven run: the scheduler's calls to the hooks, from concurrent anyio tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.trace import Tracer

from conveyor.errors import CommandFailedError
from conveyor.pipeline.hooks import Hooks, RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status

SECRET = "hunter2-registry-token-7f3a"
SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32
RUN_ID = "20250102T030405Z-abc123"


@dataclass
class Plan:
    """What a stage does: fail the first ``failures`` attempts, then succeed (or not)."""

    name: str
    failures: int = 0
    attempts: int = 1
    outputs: Mapping[str, str] = field(default_factory=dict)


PLANS = (
    Plan("test"),
    Plan(
        "build",
        failures=1,
        attempts=2,
        outputs={
            "image.ref": f"registry.local/hello:{SHA}",
            "image.digest": DIGEST,
            "cache.hit": "true",
            "push.url": f"https://ci:{SECRET}@registry.local/v2/",
        },
    ),
    Plan("scan", failures=2, attempts=2),
)


async def drive_run(hooks: Hooks, stage_tracer: Tracer) -> tuple[PipelineResult, list[Exception]]:
    """Call the hooks as the scheduler does; stage code makes its own spans.

    Returns the result and every exception that came back out of ``attempt``.
    """
    run = RunInfo(
        RUN_ID,
        ("test", "build", "scan", "publish"),
        {"app": "hello", "source.sha": SHA},
    )
    results: list[StageResult] = []
    escaped: list[Exception] = []
    hooks.on_run_start(run)

    async def stage(plan: Plan) -> None:
        hooks.on_stage_start(plan.name)
        status, reason = Status.FAILED, ""
        for number in range(1, plan.attempts + 1):
            try:
                with hooks.attempt(plan.name, number):
                    with stage_tracer.start_as_current_span(f"{plan.name} work {number}") as span:
                        # stage code that carelessly puts the secret in its own span
                        span.set_attribute("command", f"login --password {SECRET}")
                        await anyio.sleep(0.01)  # let the other stages' tasks interleave
                        async with anyio.create_task_group() as group:
                            group.start_soon(child_task, stage_tracer, plan.name, number)
                    if number <= plan.failures:
                        raise CommandFailedError(
                            ["trivy", "image"], 1, f"auth failed for token {SECRET}"
                        )
            except CommandFailedError as error:
                escaped.append(error)
                reason = str(error).splitlines()[0] + f" ({SECRET})"
                continue
            status, reason = Status.SUCCESS, ""
            break
        result = StageResult(plan.name, status, reason, 0.02, number, plan.outputs)
        results.append(result)
        hooks.on_stage_end(result)

    async with anyio.create_task_group() as group:
        for plan in PLANS:
            group.start_soon(stage, plan)
    skipped = StageResult("publish", Status.SKIPPED, "dependency 'scan' failed")
    results.append(skipped)
    hooks.on_stage_end(skipped)
    result = PipelineResult(RUN_ID, tuple(results), 0.05)
    hooks.on_run_end(run, result)
    return result, escaped


async def child_task(tracer: Tracer, stage: str, number: int) -> None:
    """A task the stage starts: its span must still nest under the attempt."""
    with tracer.start_as_current_span(f"{stage} child {number}"):
        await anyio.lowlevel.checkpoint()


def value(any_value: AnyValue) -> object:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(value(v) for v in any_value.array_value.values)
    return getattr(any_value, kind) if kind else None


def attributes(span: Span) -> dict[str, object]:
    """A protobuf span's attributes as a plain dict."""
    return {kv.key: value(kv.value) for kv in span.attributes}
