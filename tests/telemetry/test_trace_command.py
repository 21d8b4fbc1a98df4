"""``conveyor trace show`` and ``conveyor trace list``: the exact text a user sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.errors import RunStoreError
from conveyor.telemetry.store import RunStore

from .records import RUN_ID, WATERFALL, record_runs

pytestmark = pytest.mark.timeout(30)

HEADER = (
    f"run {RUN_ID}  failed  2.00s  started 2025-01-02 03:04:05Z  "
    "trace 4bf92f3577b34da6a3ce929d0e0e4736"
)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    record_runs(RunStore(root))
    return root


def test_list_shows_runs_newest_first(runs: Path) -> None:
    result = CliRunner().invoke(app, ["trace", "list", "--dir", str(runs)])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "run                      started               duration  status      stages\n"
        "20250102T040000Z-ffffff  2025-01-02 04:00:00Z    45.00s  unfinished       1\n"
        "20250102T030405Z-abc123  2025-01-02 03:04:05Z     2.00s  failed           3\n"
        "20250101T120000Z-0f0f0f  2025-01-01 12:00:00Z     1.00s  success          1\n"
    )


def test_list_of_an_empty_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["trace", "list", "--dir", str(tmp_path / "none")])

    assert result.exit_code == 0
    assert result.output == f"no runs recorded in {tmp_path / 'none'}\n"


def test_show_a_run_by_prefix(runs: Path) -> None:
    result = CliRunner().invoke(
        app, ["trace", "show", "20250102T03", "--dir", str(runs), "--width", "20"]
    )

    assert result.exit_code == 0, result.output
    assert result.output == f"{HEADER}\n{WATERFALL}\n"


def test_show_defaults_to_the_latest_run(runs: Path) -> None:
    result = CliRunner().invoke(app, ["trace", "show", "--dir", str(runs), "--width", "10"])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "run 20250102T040000Z-ffffff  unfinished  45.00s  started 2025-01-02 04:00:00Z  "
        "trace 4bf92f3577b34da6a3ce929d0e0e4736\n"
        "span         status   duration  │0   45.00s│\n"
        "stage build  success    45.00s  │━━━━━━━━━━│\n"
    )


def test_show_of_an_unknown_run_is_a_run_store_error(runs: Path) -> None:
    result = CliRunner().invoke(app, ["trace", "show", "1999", "--dir", str(runs)])

    assert isinstance(result.exception, RunStoreError)
    assert str(result.exception) == (
        f"{runs}: no run matches '1999'\n  hint: list the recorded runs with 'conveyor trace list'"
    )


def test_the_console_script_prints_the_error_and_exits_1(runs: Path) -> None:
    script = Path(sys.executable).parent / "conveyor"

    done = subprocess.run(
        [str(script), "trace", "show", "2025", "--dir", str(runs)],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"error: {runs}: 3 runs match '2025': 20250101T120000Z-0f0f0f, "
        "20250102T030405Z-abc123, 20250102T040000Z-ffffff\n"
        "  hint: give more characters of the run id\n"
    )


def test_the_console_script_shows_a_run(runs: Path) -> None:
    script = Path(sys.executable).parent / "conveyor"

    done = subprocess.run(
        [str(script), "trace", "show", RUN_ID, "--dir", str(runs), "--width", "20"],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200"},
    )

    assert done.stdout == f"{HEADER}\n{WATERFALL}\n"


def test_the_cli_loads_no_telemetry_until_a_trace_command_runs() -> None:
    code = (
        "import sys, conveyor.cli.app, conveyor.cli.trace\n"
        "print(sorted(m for m in sys.modules"
        " if m.startswith(('opentelemetry', 'conveyor.telemetry'))))"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=20
    )

    assert done.stdout == "[]\n"


def test_without_dir_the_nearest_run_store_above_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    record_runs(RunStore(project / ".conveyor" / "runs"))
    deep = project / "src" / "hello"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)

    result = CliRunner().invoke(app, ["trace", "show", RUN_ID, "--width", "20"])

    assert result.exit_code == 0, result.output
    assert result.output == f"{HEADER}\n{WATERFALL}\n"


def test_without_dir_and_without_a_run_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["trace", "list"])

    assert result.output == f"no runs recorded in {tmp_path / '.conveyor' / 'runs'}\n"
