"""A reader that goes away (``conveyor plan | head``) ends no command.

When the process reading Conveyor's standard output exits, the next write
fails with ``EPIPE``.  Left alone, that ``BrokenPipeError`` would end
``conveyor --help | head -1`` with ``error: Broken pipe`` and exit 1, and
abort a ``conveyor run`` between two stages because a log line could not
be written.  Output is for the reader; the run's record (summary.json,
reports, traces) is the run store's.  So once standard output is closed,
what is still written to it goes to ``/dev/null``, and the command goes on
to its own outcome and exit code.

Ctrl-C and signals are untouched: ``SIGPIPE`` stays ignored (Python's
default), so a closed pipe never kills a run without its cleanup.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class ClosedStdoutTolerant:
    """``sys.stdout`` that sends what follows to ``/dev/null`` once its reader is gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        # The stream's buffer still holds what could not be written: pointing its
        # descriptor at /dev/null lets the next flush (and the interpreter's last one
        # at exit) drain it without another error.
        self.closed_by_reader = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def tolerate_closed_stdout() -> None:
    """Wrap ``sys.stdout`` (once) so that a reader closing it ends nothing."""
    if not isinstance(sys.stdout, ClosedStdoutTolerant) and sys.stdout is not None:
        sys.stdout = ClosedStdoutTolerant(sys.stdout)
