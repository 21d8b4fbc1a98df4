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
from conveyor.process.conversation import conversation
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


# -- conversations: one child answering many requests (git cat-file --batch) ----


def repository(tmp_path: Path) -> tuple[Path, str]:
    """A real git repository holding one file; its blob id."""
    root = tmp_path / "repo"
    root.mkdir()
    for args in (["init", "-q"], ["config", "user.name", "T"], ["config", "user.email", "t@x"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    (root / "a.txt").write_text("hello\n")
    subprocess.run(["git", "add", "a.txt"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "a"], cwd=root, check=True)
    blob = subprocess.run(
        ["git", "rev-parse", "HEAD:a.txt"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    return root, blob


def lines(count: int) -> Callable[[bytes], int | None]:
    """The answer is whole after ``count`` lines (``git cat-file --batch-check``)."""

    def complete(data: bytes) -> int | None:
        at = 0
        for _ in range(count):
            at = data.find(b"\n", at) + 1
            if at == 0:
                return None
        return at

    return complete


def test_a_conversation_answers_many_requests_in_one_process(tmp_path: Path) -> None:
    root, blob = repository(tmp_path)
    recorder = Recorder()

    check = ["git", "cat-file", "--batch-check"]
    with observe_processes(recorder), conversation(check, cwd=root) as git:
        first = git.exchange(b"HEAD:a.txt\n", lines(1))
        both = git.exchange(b"HEAD:missing.txt\nHEAD:a.txt\n", lines(2))

    assert first == f"{blob} blob 6\n".encode()
    assert both == f"HEAD:missing.txt missing\n{blob} blob 6\n".encode()
    # one process from the first request to the end of the block, which ended it normally
    assert recorder.seen == [("git cat-file", ("git", "cat-file", "--batch-check"), "ok [0]")]


def test_a_large_request_and_answer_never_block_each_other(tmp_path: Path) -> None:
    # more than a pipe holds both ways: the request is written while the answer is read
    root, blob = repository(tmp_path)
    count = 20_000
    with conversation(["git", "cat-file", "--batch-check"], cwd=root) as git:
        answer = git.exchange(b"HEAD:a.txt\n" * count, lines(count))
    assert answer == f"{blob} blob 6\n".encode() * count


def test_a_child_that_ends_before_answering_fails_with_its_stderr(tmp_path: Path) -> None:
    script = "import sys; sys.stdin.readline(); sys.stderr.write('no such thing'); exit(4)"
    with (
        pytest.raises(CommandFailedError) as caught,
        conversation([sys.executable, "-c", script]) as child,
    ):
        child.exchange(b"ask\n", lines(1))
    assert caught.value.exit_code == 4
    assert "no such thing" in caught.value.stderr


def test_an_exchange_past_its_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    started = time.monotonic()
    with (
        pytest.raises(CommandTimeoutError) as caught,
        conversation(family_command(tmp_path), timeout=1) as child,
    ):
        child.exchange(b"ask\n", lines(1))
    assert caught.value.timeout == 1
    assert time.monotonic() - started < 1 + KILL_GRACE + 2
    assert all_gone(family_pids(tmp_path))


async def test_cancelling_the_host_task_of_a_conversation_leaves_no_process(
    tmp_path: Path,
) -> None:
    after: list[str] = []

    def waiting_for_an_answer() -> None:
        try:
            with conversation(family_command(tmp_path)) as child:
                child.exchange(b"ask\n", lines(1))
        finally:
            after.append("cleanup ran in the thread")
        after.append("not reached")

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(1):
            await anyio.to_thread.run_sync(waiting_for_an_answer)
    assert time.monotonic() - started < 1 + KILL_GRACE + 2
    assert after == ["cleanup ran in the thread"]
    assert all_gone(family_pids(tmp_path))


async def test_a_cancelled_host_task_ends_a_real_git_conversation_between_exchanges(
    tmp_path: Path,
) -> None:
    root, blob = repository(tmp_path)
    pids: list[int] = []
    answers: list[bytes] = []

    def reading() -> None:
        with conversation(["git", "cat-file", "--batch-check"], cwd=root) as git:
            answers.append(git.exchange(b"HEAD:a.txt\n", lines(1)))
            pids.append(git.pid)
            pause(30)  # the host task is cancelled here, between two exchanges
            answers.append(git.exchange(b"HEAD:a.txt\n", lines(1)))

    with anyio.move_on_after(0.5) as scope:
        await anyio.to_thread.run_sync(reading)
    assert scope.cancelled_caught
    assert answers == [f"{blob} blob 6\n".encode()]
    assert all_gone(pids)


def test_an_error_in_the_block_kills_the_child(tmp_path: Path) -> None:
    root, _ = repository(tmp_path)
    pids: list[int] = []

    def failing() -> None:
        with conversation(["git", "cat-file", "--batch-check"], cwd=root) as git:
            pids.append(git.pid)
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError):
        failing()
    assert all_gone(pids)


def test_a_conversation_with_a_missing_program_is_tool_missing() -> None:
    with (
        pytest.raises(ToolMissingError) as caught,
        conversation(["conveyor-no-such-program"], install_hint="install it"),
    ):
        pytest.fail("a program that is not installed was started")
    assert caught.value.tool == "conveyor-no-such-program"
    assert caught.value.hint == "install it"
