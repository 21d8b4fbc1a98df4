"""The run's Dagger Cloud trace link, asked of the engine through its API, offline.

``DaggerApiDouble`` (a double of the Dagger engine's GraphQL API) validates
every query against the Dagger v0.21.8 schema and records it; the tests
assert what was sent (``cloud { traceURL }``) and what comes back for each
answer the engine gives: the link (Dagger Cloud configured), the error the
engine's ``core/schema/cloud.go`` returns without a Dagger Cloud organization,
no answer in time, and links that must not be shown.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagger
import pytest
from dagger_query import NO_CLOUD_ORGANIZATION, DaggerApiDouble, QueryFailure

from conveyor.config import load_config
from conveyor.engines import dagger as dagger_engine
from conveyor.engines.dagger import DaggerEngine, DaggerSession
from conveyor.engines.port import Engine, TraceLinked
from conveyor.engines.unavailable import NoEngine
from conveyor.pipeline.hooks import RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status
from conveyor.secrets import Redactor, Secret
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import write_summary
from conveyor.telemetry.setup import start_tracing
from conveyor.telemetry.store import RunStore

pytestmark = pytest.mark.anyio

TRACE = "https://dagger.cloud/acme/traces/4bf92f3577b34da6a3ce929d0e0e4736"
NOT_CONFIGURED = NO_CLOUD_ORGANIZATION
QUERY = "{\n  cloud {\n    traceURL: traceURL\n  }\n}"  # as dagger-io prints it


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_link_is_asked_with_one_cloud_trace_url_query() -> None:
    double = DaggerApiDouble(answers={"traceURL": TRACE})
    engine = DaggerEngine(double.client())
    assert isinstance(engine, TraceLinked)
    assert await engine.trace_url() == TRACE
    assert double.documents == [QUERY]


async def test_without_dagger_cloud_there_is_no_link_and_no_error() -> None:
    double = DaggerApiDouble(failures=[QueryFailure("traceURL", NOT_CONFIGURED)])
    assert await DaggerEngine(double.client()).trace_url() is None
    assert double.documents == [QUERY]  # asked once, the engine's error swallowed


async def test_the_double_answers_as_an_engine_without_dagger_cloud_by_default() -> None:
    double = DaggerApiDouble()
    with pytest.raises(dagger.QueryError, match="no cloud organization configured"):
        await double.client().cloud().trace_url()


async def test_an_engine_slow_to_answer_gives_no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dagger_engine, "TRACE_URL_TIMEOUT", 0.2)
    double = DaggerApiDouble(answers={"traceURL": TRACE}, delays={"traceURL": 5.0})
    assert await DaggerEngine(double.client()).trace_url() is None


@pytest.mark.parametrize(
    "answer",
    [
        f"{TRACE}?token=dag_secret_1234",
        "https://ci:dag_secret_1234@dagger.cloud/acme/traces/4bf9",
        f"{TRACE}#access_token=x",
        "http://dagger.cloud/acme/traces/4bf9",
        "javascript:alert(1)",
        "",
    ],
    ids=["query", "userinfo", "fragment", "plain-http", "not-a-link", "empty"],
)
async def test_a_link_that_could_carry_a_token_is_not_shown(answer: str) -> None:
    double = DaggerApiDouble(answers={"traceURL": answer})
    assert await DaggerEngine(double.client()).trace_url() is None


async def test_a_link_holding_a_secret_the_engine_was_given_is_not_shown() -> None:
    token = Secret("REGISTRY_PASSWORD", "s3cr3t-registry-token")
    double = DaggerApiDouble(
        answers={"traceURL": f"https://dagger.cloud/{token.reveal()}/traces/1"}
    )
    engine = DaggerEngine(double.client())
    engine._redact = Redactor([token])  # what a push with this password adds
    assert await engine.trace_url() is None


async def test_a_session_that_never_opened_asks_nothing() -> None:
    double = DaggerApiDouble(answers={"traceURL": TRACE})

    @asynccontextmanager
    async def connect(traceparent: str | None) -> AsyncIterator[DaggerEngine]:
        yield DaggerEngine(double.client())

    session = DaggerSession(connect)
    assert isinstance(session, TraceLinked)
    assert await session.trace_url() is None
    assert double.documents == []  # no engine started just for a link
    await session.engine()  # a run's first operation opens it
    assert await session.trace_url() == TRACE
    assert double.documents == [QUERY]
    await session.aclose()


# --- from the engine to summary.json and the run span --------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello" / "conveyor.toml"
SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"


def context(engine: Engine, tmp_path: Path) -> DeliveryContext:
    return DeliveryContext(load_config(EXAMPLE, env={}), engine, SHA, tmp_path / "artifacts")


def summary_of(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "artifacts" / "summary.json").read_text())  # type: ignore[no-any-return]


async def test_the_report_records_the_link_in_summary_json_and_on_the_run_span(
    tmp_path: Path,
) -> None:
    double = DaggerApiDouble(answers={"traceURL": TRACE})
    outputs = await write_summary(context(DaggerEngine(double.client()), tmp_path), {})
    assert summary_of(tmp_path)["trace_url"] == TRACE
    assert outputs["run.trace_url"] == TRACE
    assert double.documents == [QUERY]

    # the report stage's `run.` output becomes the run span's attribute
    tracing = start_tracing(environ={}, runs_dir=tmp_path / "runs")
    info = RunInfo("run-1", ("report",))
    tracing.hooks.on_run_start(info)
    tracing.hooks.on_stage_start("report")
    result = StageResult("report", Status.SUCCESS, attempts=1, outputs=outputs)
    tracing.hooks.on_stage_end(result)
    tracing.hooks.on_run_end(info, PipelineResult("run-1", (result,), 0.1))
    root = RunStore(tmp_path / "runs").load("run-1").root
    assert root is not None
    assert root.attributes["conveyor.run.trace_url"] == TRACE


async def test_without_dagger_cloud_summary_json_has_no_link(tmp_path: Path) -> None:
    double = DaggerApiDouble(failures=[QueryFailure("traceURL", NOT_CONFIGURED)])
    outputs = await write_summary(context(DaggerEngine(double.client()), tmp_path), {})
    assert "trace_url" not in summary_of(tmp_path)
    assert "run.trace_url" not in outputs
    assert outputs["ok"] == "true"  # the report stage itself is fine


async def test_an_engine_without_trace_links_is_not_asked(tmp_path: Path) -> None:
    engine = NoEngine()  # podman's place: no TraceLinked
    assert not isinstance(engine, TraceLinked)
    await write_summary(context(engine, tmp_path), {})
    assert "trace_url" not in summary_of(tmp_path)


async def test_the_report_refuses_a_link_holding_a_secret_of_the_run(tmp_path: Path) -> None:
    token = Secret("DAGGER_CLOUD_TOKEN", "dag_cloud_token_9876")
    double = DaggerApiDouble(
        answers={"traceURL": f"https://dagger.cloud/{token.reveal()}/traces/1"}
    )
    ctx = replace(context(DaggerEngine(double.client()), tmp_path), redactor=Redactor([token]))
    await write_summary(ctx, {})
    assert "trace_url" not in summary_of(tmp_path)
    assert token.reveal() not in (tmp_path / "artifacts" / "summary.json").read_text()
