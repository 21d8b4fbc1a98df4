"""open_dagger_engine: the run's trace context and CLI reach ``dagger session``.

No Dagger CLI exists here, so the CLI is a stand-in script (a real process,
named as a double): it records its arguments and ``TRACEPARENT`` and fails the
way a CLI without a container runtime does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conveyor.engines.dagger import open_dagger_engine
from conveyor.errors import EngineUnavailableError

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
        async with open_dagger_engine(traceparent=TRACEPARENT, cli=cli):
            pytest.fail("no engine can start here")

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
        async with open_dagger_engine(cli=missing):
            pytest.fail("no engine can start here")
