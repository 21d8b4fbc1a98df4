"""open_dagger_engine: the run's trace context and CLI reach ``dagger session``.

No Dagger CLI exists here, so the CLI is a stand-in script (a real process,
named as a double): it records its arguments and ``TRACEPARENT`` and fails the
way a CLI without a container runtime does.  The session opens at the first
operation, so every test makes one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conveyor.engines.dagger import open_dagger_engine
from conveyor.engines.port import BuildSpec
from conveyor.errors import EngineUnavailableError
from conveyor.pipeline.hooks import RunInfo
from conveyor.telemetry.setup import run_context, start_tracing

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def write_cli_double(tmp_path: Path) -> tuple[Path, Path]:
    record = tmp_path / "record.json"
    cli = tmp_path / "dagger"
    cli.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'traceparent': os.environ.get('TRACEPARENT')}}, "
        f"open({str(record)!r}, 'w'))\n"
        "print('failed to start engine: exec: \"docker\": executable file not found', "
        "file=sys.stderr)\n"
        "sys.exit(1)\n",
        encoding="utf-8",
    )
    cli.chmod(0o755)
    return cli, record


@pytest.mark.anyio
async def test_the_session_gets_the_runs_traceparent_and_a_failure_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGGER_SESSION_PORT", raising=False)
    monkeypatch.delenv("TRACEPARENT", raising=False)
    cli, record = write_cli_double(tmp_path)

    with pytest.raises(EngineUnavailableError) as caught:
        async with open_dagger_engine(traceparent=TRACEPARENT, cli=cli) as engine:
            await engine.build(BuildSpec(context=tmp_path))

    sent = json.loads(record.read_text(encoding="utf-8"))
    assert sent["traceparent"] == TRACEPARENT
    assert sent["argv"][0] == "session"
    assert caught.value.engine == "dagger"
    assert "could not be started" in str(caught.value)
    assert caught.value.hint is not None
    assert "--engine podman" in caught.value.hint
    assert "TRACEPARENT" not in os.environ
    assert "_EXPERIMENTAL_DAGGER_CLI_BIN" not in os.environ


@pytest.mark.anyio
async def test_a_cli_that_cannot_be_executed_is_an_unavailable_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGGER_SESSION_PORT", raising=False)
    missing = tmp_path / "no-such-dagger"

    with pytest.raises(EngineUnavailableError, match="could not be started"):
        async with open_dagger_engine(cli=missing) as engine:
            await engine.build(BuildSpec(context=tmp_path))


@pytest.mark.anyio
async def test_the_session_opens_inside_the_run_span_when_the_run_uses_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGGER_SESSION_PORT", raising=False)
    monkeypatch.delenv("TRACEPARENT", raising=False)
    cli, record = write_cli_double(tmp_path)

    with start_tracing(environ={}, runs_dir=tmp_path / "runs") as tracing:
        async with open_dagger_engine(cli=cli, parent=run_context) as engine:
            assert not record.exists()  # nothing starts before the run needs the engine
            tracing.hooks.on_run_start(RunInfo("run-1", ("build",)))
            run_span = tracing.hooks.run_span
            assert run_span is not None
            with pytest.raises(EngineUnavailableError):
                await engine.build(BuildSpec(context=tmp_path))

    sent = json.loads(record.read_text(encoding="utf-8"))
    context = run_span.get_span_context()
    assert sent["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert run_context() is None  # outside the traced run


@pytest.mark.anyio
async def test_outside_a_run_the_session_takes_the_given_traceparent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGGER_SESSION_PORT", raising=False)
    cli, record = write_cli_double(tmp_path)

    async with open_dagger_engine(cli=cli, parent=run_context, traceparent=TRACEPARENT) as engine:
        with pytest.raises(EngineUnavailableError):
            await engine.inspect_remote("registry.example.com/hello:1")

    assert json.loads(record.read_text(encoding="utf-8"))["traceparent"] == TRACEPARENT
