"""The provider built from OTEL_* variables: exporters, endpoints, headers, errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.errors import ConfigError
from conveyor.pipeline.hooks import RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status
from conveyor.secrets import Redactor, Secret
from conveyor.telemetry.setup import Tracing, start_tracing
from conveyor.telemetry.store import RunStore

from .conftest import OtlpReceiver

pytestmark = pytest.mark.timeout(30)


def one_stage_run(tracing: Tracing, run_id: str = "run-1", note: str = "") -> None:
    """A minimal run through the hooks: one stage, one attempt."""
    hooks = tracing.hooks
    info = RunInfo(run_id, ("unit",), {"note": note} if note else {})
    hooks.on_run_start(info)
    hooks.on_stage_start("unit")
    with hooks.attempt("unit", 1):
        pass
    result = StageResult("unit", Status.SUCCESS, attempts=1)
    hooks.on_stage_end(result)
    hooks.on_run_end(info, PipelineResult(run_id, (result,), 0.01))


def resource_attributes(receiver: OtlpReceiver) -> dict[str, str]:
    [post] = receiver.received
    [resource_spans] = post.request.resource_spans
    return {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}


def test_no_exporter_unless_otel_traces_exporter_is_set(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    tracing = start_tracing(
        environ={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url}, runs_dir=tmp_path
    )
    one_stage_run(tracing)

    assert otlp_receiver.received == []
    # the run store records every run whatever the exporters
    names = [s.name for s in RunStore(tmp_path).load("run-1").spans]
    assert names == ["attempt 1", "stage unit", "conveyor.run"]


def test_otlp_http_to_the_base_endpoint_with_service_name_and_resource(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    tracing = start_tracing(
        environ={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url + "/",
            "OTEL_SERVICE_NAME": "hello-ci",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,service.name=ignored",
        },
        runs_dir=tmp_path,
    )
    one_stage_run(tracing)

    assert [post.path for post in otlp_receiver.received] == ["/v1/traces"]
    assert otlp_receiver.received[0].headers["content-type"] == "application/x-protobuf"
    assert resource_attributes(otlp_receiver) == {
        "deployment.environment": "staging",
        "service.name": "hello-ci",
        "service.version": "0.1.0",
    }
    assert len(otlp_receiver.spans()) == 3


def test_service_name_defaults_to_conveyor(otlp_receiver: OtlpReceiver, tmp_path: Path) -> None:
    tracing = start_tracing(
        environ={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp_receiver.traces_url,
        },
        runs_dir=tmp_path,
    )
    one_stage_run(tracing)

    assert resource_attributes(otlp_receiver)["service.name"] == "conveyor"


def test_the_traces_endpoint_is_used_as_given_and_wins_over_the_base(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    tracing = start_tracing(
        environ={
            "OTEL_TRACES_EXPORTER": "otlp",
            # nothing listens on port 9 (discard): only the traces endpoint may be used
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": otlp_receiver.traces_url,
        },
        runs_dir=tmp_path,
    )
    one_stage_run(tracing)

    assert len(otlp_receiver.spans()) == 3


def test_otlp_headers_are_sent_and_their_values_are_treated_as_secrets(
    otlp_receiver: OtlpReceiver, tmp_path: Path
) -> None:
    redactor = Redactor()
    tracing = start_tracing(
        environ={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=k3y%2Fvalue-991,x-team=ci",
        },
        runs_dir=tmp_path,
        redactor=redactor,
    )
    one_stage_run(tracing, note="sent with k3y/value-991")

    [post] = otlp_receiver.received
    assert post.headers["x-api-key"] == "k3y/value-991"
    assert post.headers["x-team"] == "ci"
    assert b"k3y/value-991" not in post.body
    assert b"sent with ***" in post.body
    assert redactor("k3y/value-991") == "***"


def test_console_exporter_writes_redacted_spans_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracing = start_tracing(
        environ={"OTEL_TRACES_EXPORTER": "console"},
        runs_dir=tmp_path,
        redactor=Redactor([Secret("TOKEN", "console-secret-55")]),
    )
    one_stage_run(tracing, note="token console-secret-55")

    captured = capsys.readouterr()
    assert captured.out == ""
    assert '"name": "conveyor.run"' in captured.err
    assert '"conveyor.note": "token ***"' in captured.err
    assert "console-secret-55" not in captured.err


def test_exporter_none_wins_over_the_others(otlp_receiver: OtlpReceiver, tmp_path: Path) -> None:
    tracing = start_tracing(
        environ={
            "OTEL_TRACES_EXPORTER": "otlp,none",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
        },
        runs_dir=tmp_path,
    )
    one_stage_run(tracing)

    assert otlp_receiver.received == []


def test_shutdown_is_idempotent_and_a_context_manager(tmp_path: Path) -> None:
    with start_tracing(environ={}, runs_dir=tmp_path) as tracing:
        one_stage_run(tracing)  # on_run_end already shut down
    tracing.shutdown()

    lines = (tmp_path / "run-1" / "spans.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == [
        "attempt 1",
        "stage unit",
        "conveyor.run",
    ]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "jaeger"},
            "configuration: OTEL_TRACES_EXPORTER: unknown exporter 'jaeger'\n"
            "  hint: use one of otlp, console, none (or a comma-separated list of them)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "configuration: OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol 'http/json'\n"
            "  hint: use one of http/protobuf, grpc",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"},
            "configuration: OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' is not an http(s) URL\n"
            "  hint: e.g. http://localhost:4318 (OTEL_EXPORTER_OTLP_ENDPOINT) or "
            "http://localhost:4318/v1/traces (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)",
        ),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://ci:pa55word@collector/v1/traces",
            },
            "configuration: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "
            "'ftp://***@collector/v1/traces' is not an http(s) URL\n"
            "  hint: e.g. http://localhost:4318 (OTEL_EXPORTER_OTLP_ENDPOINT) or "
            "http://localhost:4318/v1/traces (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_HEADERS": "authorization"},
            "configuration: OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not of the form key=value\n"
            "  hint: write a comma-separated list: key1=value1,key2=value2",
        ),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "team=ci,oops"},
            "configuration: OTEL_RESOURCE_ATTRIBUTES: entry 2 ('oops') is not of the form "
            "key=value\n  hint: write a comma-separated list: key1=value1,key2=value2",
        ),
        (
            {"TRACEPARENT": "00-not-a-trace-01"},
            "configuration: TRACEPARENT: '00-not-a-trace-01' is not a W3C traceparent\n"
            "  hint: expected 00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>, "
            "or unset TRACEPARENT",
        ),
    ],
)
def test_bad_variables_are_clear_config_errors(
    environ: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as raised:
        start_tracing(environ=environ, runs_dir=tmp_path)

    assert str(raised.value) == message
    assert "pa55word" not in str(raised.value)


def test_grpc_without_its_package_says_what_to_do(tmp_path: Path) -> None:
    # this project ships the HTTP exporter only
    assert importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is None

    with pytest.raises(ConfigError) as raised:
        start_tracing(
            environ={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            runs_dir=tmp_path,
        )

    assert str(raised.value) == (
        "configuration: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' needs the package "
        "opentelemetry-exporter-otlp-proto-grpc, which is not installed\n"
        "  hint: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (collectors listen on 4318 "
        "for it), or pip install opentelemetry-exporter-otlp-proto-grpc"
    )


def test_a_run_store_that_cannot_be_written_never_fails_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the run store's directory should be")
    tracing = start_tracing(environ={}, runs_dir=blocker)

    one_stage_run(tracing)

    # noted once (for the run's one warning), however many spans could not be written
    assert tracing.store.failures == ["spans of run run-1: Not a directory"]


def test_set_global_lets_library_spans_nest_under_the_attempt(tmp_path: Path) -> None:
    # a fresh interpreter: the global provider can be set once per process
    script = f"""
from pathlib import Path
from opentelemetry import trace
from conveyor.telemetry.setup import start_tracing
from conveyor.pipeline.hooks import RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status

tracing = start_tracing(environ={{}}, runs_dir=Path({str(tmp_path)!r}), set_global=True)
info = RunInfo("global-1", ("unit",))
tracing.hooks.on_run_start(info)
tracing.hooks.on_stage_start("unit")
with tracing.hooks.attempt("unit", 1):
    with trace.get_tracer("some.library").start_as_current_span("library call"):
        pass
result = StageResult("unit", Status.SUCCESS, attempts=1)
tracing.hooks.on_stage_end(result)
tracing.hooks.on_run_end(info, PipelineResult("global-1", (result,), 0.0))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=20)

    spans = {s.name: s for s in RunStore(tmp_path).load("global-1").spans}
    assert sorted(spans) == ["attempt 1", "conveyor.run", "library call", "stage unit"]
    assert spans["library call"].parent_id == spans["attempt 1"].span_id
    assert spans["attempt 1"].parent_id == spans["stage unit"].span_id


EXPORT_ONCE = """
import sys
from pathlib import Path
from opentelemetry import trace
import dagger.telemetry
from conveyor.telemetry import setup
from conveyor.pipeline.hooks import RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status

if sys.argv[2] == "unsealed":  # the control: what happened before processors were fixed
    setup.OwnProcessors.seal = lambda self: None
with setup.start_tracing(runs_dir=Path(sys.argv[1]), set_global=True) as tracing:
    info = RunInfo("once-1", ("unit",))
    tracing.hooks.on_run_start(info)
    tracing.hooks.on_stage_start("unit")
    with tracing.hooks.attempt("unit", 1):
        # what dagger.Connection does when it opens, under `dagger run`
        dagger.telemetry.initialize()
        with trace.get_tracer("dagger.io/sdk.python").start_as_current_span("POST /query"):
            pass
    result = StageResult("unit", Status.SUCCESS, attempts=1)
    tracing.hooks.on_stage_end(result)
    tracing.hooks.on_run_end(info, PipelineResult("once-1", (result,), 0.0))
"""


@pytest.mark.parametrize(("mode", "copies"), [("sealed", 1), ("unsealed", 2)])
def test_under_dagger_run_every_span_is_exported_once(
    otlp_receiver: OtlpReceiver, tmp_path: Path, mode: str, copies: int
) -> None:
    # `dagger run` sets these for the process it runs; dagger-io reads the same ones
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
    }
    subprocess.run(
        [sys.executable, "-c", EXPORT_ONCE, str(tmp_path), mode], check=True, timeout=60, env=env
    )

    received = [span.span_id for span in otlp_receiver.spans()]
    names = sorted({span.name for span in otlp_receiver.spans()})
    assert names == ["POST /query", "attempt 1", "conveyor.run", "stage unit"]
    assert len(set(received)) == 4
    assert sorted(received.count(span_id) for span_id in set(received)) == [copies] * 4
