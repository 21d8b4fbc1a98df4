"""Tool calls: how the process runners tell an observer about every external command.

The runners (:func:`conveyor.engines.process.run_process` for podman, skopeo
and Trivy; the git and kubectl adapters) wrap each command in
:func:`tool_call`; tracing installs an observer (:func:`observe_tool_calls`)
that makes each call a child span of the stage running it, so ``conveyor
trace show`` says where a stage's time went.  The runners know nothing of
OpenTelemetry, and without an observer a call costs one lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

ExitCode = Callable[[int], None]
"""Called with the command's exit code once it is known."""
Observer = Callable[[Sequence[str]], AbstractContextManager[ExitCode]]
"""Wraps one command: entered before it starts, left when it has ended."""

_observer: ContextVar[Observer | None] = ContextVar("conveyor_tool_observer", default=None)


def observe_tool_calls(observer: Observer | None) -> Callable[[], None]:
    """Install ``observer`` for the current context (and tasks and threads started from it).

    Returns:
        A function that puts back the observer there was before.
    """
    token = _observer.set(observer)
    return lambda: _observer.reset(token)


@contextmanager
def tool_call(argv: Sequence[str]) -> Iterator[ExitCode]:
    """Wrap one external command; call the yielded function with its exit code.

    ``argv`` must already be redacted: it is what the observer records.
    """
    observer = _observer.get()
    if observer is None:
        yield _ignore
        return
    with observer(argv) as exit_code:
        yield exit_code


def _ignore(code: int) -> None:
    return None
