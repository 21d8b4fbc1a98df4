"""Process hooks that record what ``conveyor.process`` starts (the hooks tracing uses)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from conveyor.process import ExitRecorder


class Started:
    """Records the name and the command of every process started, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.commands: list[list[str]] = []

    @contextmanager
    def process(self, name: str, command: Sequence[str]) -> Iterator[ExitRecorder]:
        self.names.append(name)
        self.commands.append(list(command))
        yield lambda code: None
