"""The journal hook: an always-run stage sees every earlier stage's result through it."""

from __future__ import annotations

import pytest

from conveyor.errors import PolicyError
from conveyor.pipeline.graph import Outputs, Pipeline, Stage, StageInputs
from conveyor.pipeline.journal import Journal
from conveyor.pipeline.result import StageResult, Status
from conveyor.pipeline.scheduler import run_pipeline

pytestmark = pytest.mark.anyio


async def test_an_always_stage_reads_failures_skips_and_attempts_from_the_journal() -> None:
    journal = Journal()
    seen: dict[str, StageResult] = {}
    calls = {"flaky": 0}

    async def ok(inputs: StageInputs) -> Outputs:
        return {"value": "1"}

    async def flaky(inputs: StageInputs) -> Outputs:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise OSError("first attempt lost")
        return {}

    async def refused(inputs: StageInputs) -> Outputs:
        raise PolicyError("img:latest", "mutable tag")

    async def never(inputs: StageInputs) -> Outputs:
        raise AssertionError("a dependent of a failure must not run")

    async def report(inputs: StageInputs) -> Outputs:
        seen.update(journal.results)
        return {}

    pipeline = Pipeline(
        [
            Stage("a", ok),
            Stage("b", flaky, retries=1, backoff=0.0),
            Stage("c", refused, needs=("a",)),
            Stage("d", never, needs=("c",)),
            Stage("report", report, needs=("a", "b", "c", "d"), always=True),
        ]
    )

    async def no_sleep(seconds: float) -> None:
        return None

    result = await run_pipeline(pipeline, hooks=journal, run_id="run-1", sleep=no_sleep)

    assert set(seen) == {"a", "b", "c", "d"}
    assert seen["a"].outputs == {"value": "1"}
    assert (seen["b"].status, seen["b"].attempts) == (Status.SUCCESS, 2)
    assert seen["c"].status is Status.FAILED
    assert seen["c"].reason == "image 'img:latest' refused: mutable tag"
    assert (seen["d"].status, seen["d"].reason) == (Status.SKIPPED, "dependency 'c' failed")
    assert journal.run_id == "run-1"
    # after the run the journal holds the report too, as the run's result does
    assert dict(journal.results) == {r.name: r for r in result.results}


async def test_a_new_run_starts_an_empty_journal() -> None:
    journal = Journal()

    async def ok(inputs: StageInputs) -> Outputs:
        return {}

    await run_pipeline(Pipeline([Stage("first", ok)]), hooks=journal)
    await run_pipeline(Pipeline([Stage("second", ok)]), hooks=journal)

    assert list(journal.results) == ["second"]
