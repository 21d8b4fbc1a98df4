"""The process core: real child processes, errors translated, groups killed, hooks told."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from conveyor.errors import CommandFailedError, CommandTimeoutError, ToolMissingError
from conveyor.process import (
    KILL_GRACE,
    child_environment,
    observe_processes,
    pause,
    process_name,
    run,
    run_process,
)
from conveyor.secrets import Redactor, Secret

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

PYTHON = Path(sys.executable).name
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


# -- one core for sync and async callers: process groups, timeouts, cancellation --

# A parent that starts a grandchild in its own process group and prints both pids;
# the grandchild ignores SIGTERM, so only the group's SIGKILL ends it.
FAMILY = (
    "import os, signal, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
    "print(os.getpid(), child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def all_gone(pids: Sequence[int], within: float = 2.0) -> bool:
    """Whether every pid has ended (a SIGKILL is delivered asynchronously: wait a moment)."""
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def family_pids(tmp_path: Path) -> list[int]:
    return [int(pid) for pid in (tmp_path / "pids").read_text().split()]


def family_command(tmp_path: Path) -> list[str]:
    script = FAMILY.replace("flush=True)", f"file=open({str(tmp_path / 'pids')!r}, 'w'))")
    return [sys.executable, "-c", script]


def test_sync_timeout_kills_the_whole_group_and_says_so(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeoutError) as caught:
        run(family_command(tmp_path), timeout=1)
    elapsed = time.monotonic() - started
    assert caught.value.timeout == 1
    assert "did not finish within 1s and was killed" in str(caught.value)
    # SIGTERM, then SIGKILL for the grandchild that ignores it: within the grace
    assert elapsed < 1 + KILL_GRACE + 2
    assert all_gone(family_pids(tmp_path))


async def test_cancelling_the_caller_of_run_process_kills_the_group(tmp_path: Path) -> None:
    started = time.monotonic()
    with anyio.move_on_after(1) as scope:
        await run_process(family_command(tmp_path))
    assert scope.cancelled_caught
    assert time.monotonic() - started < 1 + KILL_GRACE + 2
    assert all_gone(family_pids(tmp_path))


async def test_sync_run_in_a_worker_thread_is_cancelled_with_its_host_task(
    tmp_path: Path,
) -> None:
    after: list[str] = []

    def blocking_work() -> None:
        try:
            run(family_command(tmp_path))
        finally:
            after.append("cleanup ran in the thread")
        after.append("not reached")

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(1):
            await anyio.to_thread.run_sync(blocking_work)
    assert time.monotonic() - started < 1 + KILL_GRACE + 2
    assert after == ["cleanup ran in the thread"]
    assert all_gone(family_pids(tmp_path))


async def test_a_pause_in_a_worker_thread_ends_with_its_cancelled_host_task() -> None:
    # the push retries' backoff: a cancelled run does not wait it out
    after: list[str] = []

    def backing_off() -> None:
        pause(30)
        after.append("not reached")

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.3):
            await anyio.to_thread.run_sync(backing_off)
    assert time.monotonic() - started < 1.5
    assert after == []
    pause(0.01)  # outside a worker thread: a plain wait


async def test_a_shielded_process_finishes_and_the_next_never_starts(tmp_path: Path) -> None:
    marker = tmp_path / "landed"
    second = tmp_path / "second"
    landed: list[int] = []
    finish = f"import time, pathlib; time.sleep(1.5); pathlib.Path({str(marker)!r}).touch()"

    def push_then_more() -> None:
        landed.append(run([sys.executable, "-c", finish], shield=10).exit_code)
        run([sys.executable, "-c", f"import pathlib; pathlib.Path({str(second)!r}).touch()"])

    with anyio.move_on_after(0.5) as scope:
        await anyio.to_thread.run_sync(push_then_more)
    assert scope.cancelled_caught
    assert landed == [0]
    assert marker.exists()  # ran to its end although cancelled after 0.5 s
    assert not second.exists()  # not started once cancelled


async def test_a_shield_is_bounded(tmp_path: Path) -> None:
    started = time.monotonic()
    with anyio.move_on_after(0.3) as scope:
        await anyio.to_thread.run_sync(
            lambda: run([sys.executable, "-c", "import time; time.sleep(600)"], shield=1)
        )
    assert scope.cancelled_caught
    assert time.monotonic() - started < 0.3 + 1 + KILL_GRACE + 1


def test_a_child_runs_in_its_own_session() -> None:
    script = "import os; print(os.getsid(0), os.getpgid(0), os.getpid())"
    session, group, pid = map(int, run([sys.executable, "-c", script]).stdout.split())
    assert session == group == pid != os.getsid(0)


class Recorder:
    """Process hooks that record what they were told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, ...], str]] = []

    @contextmanager
    def process(self, name: str, command: Sequence[str]) -> Iterator[Callable[[int], None]]:
        codes: list[int] = []
        try:
            yield codes.append
        except BaseException as error:
            self.seen.append((name, tuple(command), f"{type(error).__name__} {codes}"))
            raise
        self.seen.append((name, tuple(command), f"ok {codes}"))


async def test_hooks_see_every_process_sync_and_async_with_secrets_redacted() -> None:
    recorder = Recorder()
    with observe_processes(recorder):
        await run_process([sys.executable, "-c", "pass"], name="python pass")
        with pytest.raises(CommandFailedError):
            await anyio.to_thread.run_sync(
                lambda: run(
                    [sys.executable, "-c", "exit(3)", f"x{TOKEN.reveal()}"], secrets=[TOKEN]
                )
            )
    run([sys.executable, "-c", "pass"])  # outside: not observed
    assert recorder.seen == [
        ("python pass", (sys.executable, "-c", "pass"), "ok [0]"),
        (PYTHON, (sys.executable, "-c", "exit(3)", "x***"), "CommandFailedError [3]"),
    ]


def test_process_names_are_program_and_subcommand() -> None:
    assert process_name(["/usr/bin/git", "push", "--porcelain", "origin"]) == "git push"
    assert process_name(["git", "-c", "x=y", "commit", "-F", "-"]) == "git commit"
    assert process_name([sys.executable, "-c", "print(1)"]) == PYTHON
    assert process_name(["kubectl", "kustomize", "/tmp/x"]) == "kubectl kustomize"
    assert process_name(["podman", "build", "-f", "D"]) == "podman build"
    assert process_name(["/venv/bin/python3"]) == "python3"


def test_ctrl_c_in_synchronous_code_ends_the_child_group_too(tmp_path: Path) -> None:
    # the CLI's synchronous commands: SIGINT reaches only Conveyor (children have
    # their own session); the KeyboardInterrupt must take the children down with it
    caller = f"import sys\nfrom conveyor.process import run\nrun({family_command(tmp_path)!r})\n"
    parent = subprocess.Popen([sys.executable, "-c", caller], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not (tmp_path / "pids").exists() or len((tmp_path / "pids").read_text().split()) < 2:
        assert time.monotonic() < deadline, "the family did not start"
        time.sleep(0.05)
    parent.send_signal(signal.SIGINT)
    _, stderr = parent.communicate(timeout=KILL_GRACE + 10)
    assert b"KeyboardInterrupt" in stderr
    assert all_gone(family_pids(tmp_path))
