"""The one place external programs (git, kubectl, podman, skopeo, trivy ...) are started.

API:
    ``run(command, *, ...) -> ProcessResult``: for synchronous code, which the
    stages call in worker threads (``anyio.to_thread.run_sync``).
    ``await run_process(command, *, ...) -> ProcessResult``: the same core for
    async code (it runs ``run`` in a worker thread).
    ``observe_processes(hooks)``: a context in which every process is reported
    to ``hooks`` (tracing makes a child span of each, see
    :mod:`conveyor.telemetry.tracing`).
    :mod:`conveyor.process.conversation`: a child kept running across
    requests written to its stdin (``git cat-file --batch``), run the same way.

How a child is run:

- argv only, never a shell string; secrets travel by name in the child's
  environment (:class:`~conveyor.secrets.Secret`), never in argv, and
  everything returned or raised is redacted.
- In its own session (``start_new_session``): a Ctrl-C or a CI runner's
  SIGTERM to Conveyor's process group does not reach it half-way, and
  Conveyor ends it together with everything it started (``killpg``):
  SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds.
- It is killed when its ``timeout`` passes (:class:`CommandTimeoutError`)
  and when the anyio task waiting for it is cancelled (a stage timeout, a
  failed sibling, an interrupt).  In a worker thread the cancellation is
  seen through ``anyio.from_thread.check_cancelled`` (the host task's cancel
  scopes, which anyio hands to the thread), polled every
  :data:`POLL_INTERVAL` seconds; the thread then raises anyio's cancellation
  exception, which unwinds the synchronous code (its ``finally`` blocks and
  temporary directories) and ends the host task as cancelled.
- ``shield=SECONDS`` keeps a process that is already running alive for at
  most that long after a cancellation (a ``git push`` either lands or is
  never started); a shielded process is still never *started* once the
  caller is cancelled.

Outside a worker thread (plain synchronous CLI code) only ``timeout``
applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import anyio.from_thread
import anyio.to_thread

from conveyor.errors import CommandFailedError, CommandTimeoutError, ToolMissingError
from conveyor.secrets import Redactor, Secret

KILL_GRACE = 3.0
"""Seconds between SIGTERM and SIGKILL to a child's process group."""
POLL_INTERVAL = 0.1
"""Seconds between two looks at the caller's cancellation."""
_WORD = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class ProcessResult:
    """What a finished process left behind, already redacted."""

    command: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the process exited with status 0."""
        return self.exit_code == 0


ExitRecorder = Callable[[int], None]
"""Told the exit code of a process that ran to its end."""


class ProcessHooks(Protocol):
    """Watches external processes (tracing); knows nothing of how they run."""

    def process(self, name: str, command: Sequence[str]) -> AbstractContextManager[ExitRecorder]:
        """Wraps one process from start to end; an error raised by it passes through.

        The context gives a function the core calls with the exit code, when
        the process ran to its end (not when it was killed or never started).
        """
        ...


_HOOKS: contextvars.ContextVar[tuple[ProcessHooks, ...]] = contextvars.ContextVar(
    "conveyor_process_hooks", default=()
)


@contextmanager
def observe_processes(hooks: ProcessHooks) -> Iterator[None]:
    """Report every process started in this context (and tasks/threads it starts) to ``hooks``."""
    token = _HOOKS.set((*_HOOKS.get(), hooks))
    try:
        yield
    finally:
        _HOOKS.reset(token)


def child_environment(
    environ: Mapping[str, str] | None,
    env: Mapping[str, str],
    secrets: Sequence[Secret],
) -> dict[str, str]:
    """The environment a child process gets.

    Args:
        environ: The base environment; ``os.environ`` when ``None``.
        env: Variables set on top of the base.
        secrets: Set last, each under its own name.

    Returns:
        A new mapping; neither argument is modified.
    """
    result = dict(os.environ if environ is None else environ)
    result.update(env)
    result.update({secret.name: secret.reveal() for secret in secrets})
    return result


def process_name(command: Sequence[str]) -> str:
    """How a process is named in a trace: the program and its sub-command (``git push``).

    Leading options are passed over (``-c NAME=VALUE`` and ``-C DIR`` with their values).
    """
    program = Path(str(command[0])).name
    parts = iter(str(part) for part in command[1:])
    for part in parts:
        if part in {"-c", "-C"}:
            next(parts, None)
        elif _WORD.fullmatch(part):
            return f"{program} {part}"
        elif not part.startswith("-"):
            break
    return program


def run(
    command: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[Secret] = (),
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float | None = None,
    shield: float | None = None,
    check: bool = True,
    redactor: Redactor | None = None,
    install_hint: str | None = None,
    failure_hint: str | None = None,
    stdout_errors: str = "replace",
    name: str | None = None,
) -> ProcessResult:
    """Run ``command`` to completion and capture its output (synchronous).

    Args:
        command: The program and its arguments; never a shell string, and
            never containing a secret value.
        environ: The base environment (``os.environ`` when ``None``); its
            ``PATH`` is where the program is looked up.
        env: Extra variables for the child.
        secrets: Put into the child's environment by name.
        cwd: Working directory of the child.
        stdin: Bytes fed to the child's standard input (none: ``/dev/null``).
        timeout: Seconds the child may run; then it is killed with its group.
        shield: Seconds a running child is left to finish after the caller
            is cancelled (``None``: killed at once).
        check: Raise on a non-zero exit instead of returning the result.
        redactor: Applied, together with ``secrets``, to everything returned
            or raised.
        install_hint: The hint of the ``ToolMissingError`` raised when the
            program is not found.
        failure_hint: The hint of the ``CommandFailedError``.
        stdout_errors: How undecodable bytes of stdout are decoded
            (``surrogateescape`` keeps file contents byte for byte).
        name: The process's name in traces (default: :func:`process_name`).

    Returns:
        The exit code and the decoded, redacted stdout and stderr.

    Raises:
        ToolMissingError: ``command[0]`` is not on ``PATH`` or not executable.
        CommandTimeoutError: ``timeout`` passed; the child was killed.
        CommandFailedError: the exit code was not 0 and ``check`` is set.
        anyio's cancellation exception: the caller (the task a worker thread
            runs for) was cancelled; the child was killed.
    """
    if not command:
        raise ValueError("run needs a command")
    redact = Redactor(secrets)
    if redactor is not None:
        for secret in secrets:
            redactor.add(secret)
        redact = redactor
    argv = [str(part) for part in command]
    shown = tuple(redact(part) for part in argv)
    hooks = _HOOKS.get()
    with contextlib.ExitStack() as stack:
        recorders = [
            stack.enter_context(hook.process(name or process_name(shown), shown)) for hook in hooks
        ]
        code, out, err = _run_child(
            argv,
            child_environment(environ, env or {}, secrets),
            cwd=cwd,
            stdin=stdin,
            timeout=timeout,
            shield=shield,
            install_hint=install_hint,
            shown=shown,
            redact=redact,
        )
        result = ProcessResult(
            command=shown,
            exit_code=code,
            stdout=redact(out.decode(errors=stdout_errors)),
            stderr=redact(err.decode(errors="replace")),
        )
        for record in recorders:
            record(code)
        if check and not result.ok:
            raise CommandFailedError(
                result.command, result.exit_code, result.stderr, hint=failure_hint
            )
        return result


async def run_process(
    command: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[Secret] = (),
    cwd: Path | None = None,
    stdin: bytes | None = None,
    shield: float | None = None,
    check: bool = True,
    redactor: Redactor | None = None,
    install_hint: str | None = None,
    failure_hint: str | None = None,
    name: str | None = None,
) -> ProcessResult:
    """:func:`run` for async code: the same child handling, cancelled with the calling task.

    Cancelling the caller kills the child's process group (SIGTERM, then
    SIGKILL) before the cancellation goes on; for a time limit, wrap the call
    in ``anyio.fail_after``.
    """

    def call() -> ProcessResult:
        return run(
            command,
            environ=environ,
            env=env,
            secrets=secrets,
            cwd=cwd,
            stdin=stdin,
            shield=shield,
            check=check,
            redactor=redactor,
            install_hint=install_hint,
            failure_hint=failure_hint,
            name=name,
        )

    return await anyio.to_thread.run_sync(call)


def pause(seconds: float) -> None:
    """Wait ``seconds`` in synchronous code; a cancelled caller ends the wait at once.

    In a worker thread the host task's cancellation is polled every
    :data:`POLL_INTERVAL` seconds and raised, as :func:`run` does (a push
    retry's backoff never outlives a cancelled run); elsewhere a plain sleep.
    """
    deadline = time.monotonic() + seconds
    while True:
        cancelled = _cancelled()
        if cancelled is not None:
            raise cancelled
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, POLL_INTERVAL))


def _cancelled() -> BaseException | None:
    """anyio's cancellation exception when the task this thread works for was cancelled."""
    try:
        anyio.from_thread.check_cancelled()
    except anyio.NoEventLoopError:
        return None  # not a worker thread: nothing can cancel this call
    except BaseException as cancelled:  # noqa: BLE001 - the backend's cancellation class
        return cancelled
    return None


def _run_child(
    argv: list[str],
    environment: dict[str, str],
    *,
    cwd: Path | None,
    stdin: bytes | None,
    timeout: float | None,
    shield: float | None,
    install_hint: str | None,
    shown: tuple[str, ...],
    redact: Redactor,
) -> tuple[int, bytes, bytes]:
    cancelled = _cancelled()
    if cancelled is not None:
        raise cancelled  # never start a child for a cancelled caller
    with start_child(
        argv, environment, cwd=cwd, stdin_pipe=stdin is not None, install_hint=install_hint
    ) as child:
        try:
            return _wait(child, stdin, timeout, shield)
        except _TimedOut as timed_out:
            stderr = redact(timed_out.stderr.decode(errors="replace"))
            raise CommandTimeoutError(shown, timeout or 0.0, timed_out.code, stderr) from None
        except BaseException:
            # Ctrl-C in synchronous CLI code (KeyboardInterrupt): the child, in
            # its own session, did not get the signal; it ends with the caller
            if child.returncode is None:
                _end(child)
            raise


class _TimedOut(Exception):
    def __init__(self, code: int, stderr: bytes) -> None:
        self.code = code
        self.stderr = stderr


def start_child(
    argv: list[str],
    environment: dict[str, str],
    *,
    cwd: Path | None,
    stdin_pipe: bool,
    install_hint: str | None,
    unbuffered: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own, its output piped (the one ``Popen``).

    Raises:
        ToolMissingError: the program is not on ``PATH`` or not executable.
        FileNotFoundError: ``cwd`` does not exist.
    """
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=environment,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            bufsize=0 if unbuffered else -1,
        )
    except FileNotFoundError as exc:
        if cwd is not None and exc.filename is not None and Path(exc.filename) == Path(cwd):
            raise
        raise ToolMissingError(argv[0], hint=install_hint) from None
    except PermissionError as exc:
        raise ToolMissingError(
            argv[0], hint=f"{argv[0]} is not executable ({exc.strerror}); {install_hint or ''}"
        ) from None


def _wait(
    child: subprocess.Popen[bytes],
    stdin: bytes | None,
    timeout: float | None,
    shield: float | None,
) -> tuple[int, bytes, bytes]:
    """Wait for ``child``, looking at its deadline and the caller's cancellation in between.

    Raises:
        _TimedOut: the deadline passed; the group was ended.
        anyio's cancellation exception: the caller was cancelled; the group was ended.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = stdin
    cancellation: BaseException | None = None
    while True:
        step = POLL_INTERVAL
        if deadline is not None:
            step = max(0.0, min(step, deadline - time.monotonic()))
        try:
            out, err = child.communicate(pending, timeout=step)
        except subprocess.TimeoutExpired:
            pending = None  # communicate keeps what it has not written yet
        else:
            return child.returncode, out, err
        if deadline is not None and time.monotonic() >= deadline:
            code, _, err = _end(child)
            if cancellation is not None:
                raise cancellation
            raise _TimedOut(code, err)
        if cancellation is None:
            cancellation = _cancelled()
            if cancellation is not None and shield is None:
                _end(child)
                raise cancellation
            if cancellation is not None and shield is not None:
                # already running and shielded: at most ``shield`` more seconds
                end = time.monotonic() + shield
                deadline = end if deadline is None else min(deadline, end)


def _end(child: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    """Stop ``child`` and its whole process group: SIGTERM, then SIGKILL; what it left."""
    _signal_group(child.pid, signal.SIGTERM)
    try:
        out, err = child.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        _signal_group(child.pid, signal.SIGKILL)
        try:
            out, err = child.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            # a member that left the group still holds the pipes: stop reading
            child.kill()
            child.wait()
            out, err = b"", b""
    _signal_group(child.pid, signal.SIGKILL)  # members that outlived the leader
    return child.returncode, out or b"", err or b""


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
