"""run_process: real child processes, errors translated at the boundary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conveyor.engines.process import child_environment, run_process
from conveyor.errors import CommandFailedError, ToolMissingError
from conveyor.secrets import Redactor, Secret

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TOKEN = Secret("DEPLOY_TOKEN", "tok-5f2a9c-value")


async def test_captures_stdout_stderr_and_exit_code(tmp_path: Path) -> None:
    result = await run_process(
        [sys.executable, "-c", "import os,sys; print(os.getcwd()); sys.stderr.write('e'); exit(3)"],
        cwd=tmp_path,
        check=False,
    )
    assert (result.exit_code, result.ok) == (3, False)
    assert result.stdout.strip() == str(tmp_path)
    assert result.stderr == "e"


async def test_secret_is_in_the_child_environment_by_name_and_redacted() -> None:
    script = (
        "import os; token = os.environ['DEPLOY_TOKEN']; print(token == 'tok-5f2a9c-value', token)"
    )
    result = await run_process([sys.executable, "-c", script], env={"PLAIN": "1"}, secrets=[TOKEN])
    assert result.stdout.strip() == "True ***"
    assert all(TOKEN.reveal() not in part for part in result.command)


async def test_failure_raises_with_command_exit_code_and_redacted_stderr_tail() -> None:
    script = (
        "import os, sys\n"
        "for i in range(40): print(f'line {i}', file=sys.stderr)\n"
        "print('leaked', os.environ['DEPLOY_TOKEN'], file=sys.stderr)\n"
        "sys.exit(7)"
    )
    with pytest.raises(CommandFailedError) as caught:
        await run_process([sys.executable, "-c", script], secrets=[TOKEN], failure_hint="do X")
    error = caught.value
    assert error.exit_code == 7
    assert error.command[0] == sys.executable
    assert "leaked ***" in str(error)
    assert TOKEN.reveal() not in str(error)
    assert "line 39" in str(error)
    assert "line 5\n" not in str(error)  # only the tail is shown
    assert error.hint == "do X"


async def test_missing_program_is_tool_missing_with_hint(tmp_path: Path) -> None:
    with pytest.raises(ToolMissingError) as caught:
        await run_process(
            ["podman", "info"], environ={"PATH": str(tmp_path)}, install_hint="get it"
        )
    assert caught.value.tool == "podman"
    assert caught.value.hint == "get it"


async def test_missing_working_directory_is_not_a_missing_tool(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await run_process([sys.executable, "-V"], cwd=tmp_path / "absent")


async def test_shared_redactor_learns_the_secrets() -> None:
    redactor = Redactor()
    await run_process([sys.executable, "-c", "pass"], secrets=[TOKEN], redactor=redactor)
    assert redactor(f"x {TOKEN.reveal()} y") == "x *** y"


def test_child_environment_layers_base_env_and_secrets() -> None:
    merged = child_environment({"PATH": "/bin", "A": "1"}, {"A": "2"}, [TOKEN])
    assert merged == {"PATH": "/bin", "A": "2", "DEPLOY_TOKEN": TOKEN.reveal()}
