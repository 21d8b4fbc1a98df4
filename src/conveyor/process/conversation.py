"""A child kept running across exchanges over its stdin and stdout (``git cat-file --batch``).

API:
    ``with conversation(command, *, ...) as child: child.exchange(request, complete)``:
    synchronous, for worker threads, as :func:`conveyor.process.run`.

A conversation's child is run the same way (its own session, the scrubbed
environment, redaction, hooks from start to end: one span for its whole
life, beside the processes started meanwhile, not around them), with these
differences: ``timeout`` bounds each exchange, not the
child's life; the caller's cancellation is looked at before every exchange
and while one waits; and the child is ended with its group (SIGTERM, then
SIGKILL) whenever the ``with`` block is left by an exception, a timeout or a
cancellation.  Left normally, its stdin is closed and it is waited for
(:data:`KILL_GRACE` seconds at most, then ended the same way).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import selectors
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from conveyor.errors import CommandFailedError, CommandTimeoutError
from conveyor.process import (
    _HOOKS,
    KILL_GRACE,
    POLL_INTERVAL,
    ExitRecorder,
    _cancelled,
    _end,
    child_environment,
    process_name,
    start_child,
)
from conveyor.secrets import Redactor

Complete = Callable[[bytes], int | None]
"""Told what a conversation's child printed so far (since the last answer): the
length of the answer once it is whole, ``None`` while more must come."""

_READ_SIZE = 65536
_STDERR_KEPT = 65536


@contextmanager
def conversation(
    command: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    redactor: Redactor | None = None,
    install_hint: str | None = None,
    name: str | None = None,
) -> Iterator[Conversation]:
    """Start ``command`` for a series of exchanges over its stdin and stdout (synchronous).

    Args:
        command: The program and its arguments (argv, never a shell string).
        environ: The base environment (``os.environ`` when ``None``).
        env: Extra variables for the child.
        cwd: Working directory of the child.
        timeout: Seconds each exchange may take; then the child is killed.
        redactor: Applied to everything raised.
        install_hint: The hint of the ``ToolMissingError``.
        name: The process's name in traces (default: :func:`process_name`).

    Yields:
        The running child: :meth:`Conversation.exchange`.

    Raises:
        ToolMissingError: ``command[0]`` is not on ``PATH`` or not executable.
        CommandFailedError: the child ended with a non-zero exit code (at an
            exchange it did not answer, or when the block ends).
        anyio's cancellation exception: the caller was cancelled before the start.
    """
    if not command:
        raise ValueError("conversation needs a command")
    redact = redactor or Redactor()
    argv = [str(part) for part in command]
    shown = tuple(redact(part) for part in argv)
    cancelled = _cancelled()
    if cancelled is not None:
        raise cancelled  # never start a child for a cancelled caller
    with contextlib.ExitStack() as stack:
        recorders = [
            _aside(stack, hook.process(name or process_name(shown), shown)) for hook in _HOOKS.get()
        ]
        child = start_child(
            argv,
            child_environment(environ, env or {}, ()),
            cwd=cwd,
            stdin_pipe=True,
            install_hint=install_hint,
            unbuffered=True,
        )
        talk = Conversation(child, shown, timeout, redact)
        try:
            yield talk
        except BaseException:
            if child.returncode is None:
                _end(child)
            talk.close_pipes()
            raise
        code = talk.finish()
        for record in recorders:
            record(code)
        if code != 0:
            raise CommandFailedError(shown, code, talk.stderr_text())


def _aside(
    stack: contextlib.ExitStack, watch: AbstractContextManager[ExitRecorder]
) -> ExitRecorder:
    """Enter a hook's context in a copy of this context, left when ``stack`` ends.

    A hook may make its span the current one (tracing does): the processes the
    caller starts while the conversation lasts are its siblings, not its children.
    """
    aside = contextvars.copy_context()
    recorder = aside.run(watch.__enter__)
    stack.push(lambda *exc: aside.run(watch.__exit__, *exc))
    return recorder


class Conversation:
    """A running child answering requests written to its stdin (see :func:`conversation`)."""

    def __init__(
        self,
        child: subprocess.Popen[bytes],
        shown: tuple[str, ...],
        timeout: float | None,
        redact: Redactor,
    ) -> None:
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stderr is not None
        self._child = child
        self._shown = shown
        self._timeout = timeout
        self._redact = redact
        self._stdin = child.stdin.fileno()
        self._stdout = child.stdout.fileno()
        self._stderr = child.stderr.fileno()
        os.set_blocking(self._stdin, False)  # a full pipe never blocks: both ways are read
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)
        self._selector.register(self._stderr, selectors.EVENT_READ)
        self._out = bytearray()
        self._err = bytearray()
        self._open = {self._stdout, self._stderr}

    @property
    def pid(self) -> int:
        """The child's process id (also its process group's)."""
        return self._child.pid

    def exchange(self, request: bytes, complete: Complete) -> bytes:
        """Write ``request`` and read until ``complete`` says the answer is whole.

        Args:
            request: Bytes for the child's stdin.
            complete: Given the bytes the child printed since the last answer,
                returns the answer's length once it is all there.

        Returns:
            The answer's bytes (what follows it is kept for the next exchange).

        Raises:
            CommandTimeoutError: no whole answer within the timeout; the child was killed.
            CommandFailedError: the child ended before it answered.
            anyio's cancellation exception: the caller was cancelled; the child was killed.
        """
        cancelled = _cancelled()
        if cancelled is not None:
            _end(self._child)
            raise cancelled
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        pending = memoryview(request)
        if pending:
            self._selector.register(self._stdin, selectors.EVENT_WRITE)
        try:
            while True:
                done = complete(bytes(self._out))
                if done is not None:
                    answer = bytes(self._out[:done])
                    del self._out[:done]
                    return answer
                if not self._open:
                    code = self._child.wait()
                    raise CommandFailedError(self._shown, code, self.stderr_text())
                step = POLL_INTERVAL
                if deadline is not None:
                    step = max(0.0, min(step, deadline - time.monotonic()))
                events = self._selector.select(step)
                for key, _ in events:
                    if key.fd == self._stdin:
                        pending = self._write(pending)
                    else:
                        self._read(key.fd)
                if not events:
                    self._idle(deadline)
        finally:
            if self._stdin in self._selector.get_map():
                self._selector.unregister(self._stdin)

    def _write(self, pending: memoryview) -> memoryview:
        try:
            written = os.write(self._stdin, pending[:_READ_SIZE])
        except BlockingIOError:
            return pending
        except BrokenPipeError:
            written = len(pending)  # the child is gone: its exit says why
        rest = pending[written:]
        if not rest:
            self._selector.unregister(self._stdin)
        return rest

    def _read(self, fd: int) -> None:
        data = os.read(fd, _READ_SIZE)
        if not data:
            self._selector.unregister(fd)
            self._open.discard(fd)
        elif fd == self._stdout:
            self._out += data
        else:
            self._err += data
            del self._err[:-_STDERR_KEPT]

    def _idle(self, deadline: float | None) -> None:
        """Nothing came for a while: the deadline or the caller's cancellation ends the child."""
        if deadline is not None and time.monotonic() >= deadline:
            code, _, _ = _end(self._child)
            raise CommandTimeoutError(
                self._shown, self._timeout or 0.0, code, self.stderr_text()
            ) from None
        cancelled = _cancelled()
        if cancelled is not None:
            _end(self._child)
            raise cancelled

    def stderr_text(self) -> str:
        """What the child wrote to stderr (its last part), decoded and redacted."""
        return self._redact(bytes(self._err).decode(errors="replace"))

    def finish(self) -> int:
        """Close stdin, wait for the child (ended with its group after the grace); its exit code."""
        if self._child.stdin is not None:
            with contextlib.suppress(OSError):
                self._child.stdin.close()  # the child's end of input: it answers and exits
        deadline = time.monotonic() + KILL_GRACE
        while self._open and time.monotonic() < deadline:
            for key, _ in self._selector.select(POLL_INTERVAL):
                self._read(key.fd)
        if self._open or self._child.poll() is None:
            try:
                self._child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _end(self._child)
        self.close_pipes()
        return self._child.wait()

    def close_pipes(self) -> None:
        self._selector.close()
        for stream in (self._child.stdin, self._child.stdout, self._child.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# -- the child -----------------------------------------------------------------
