"""Lifecycle hooks: how tracing, the live table and the run log watch a run.

The scheduler calls these and knows nothing of OpenTelemetry or terminals
(the Hamilton ``lifecycle`` pattern).  ``attempt`` wraps one attempt of a
stage; an exception raised by the stage passes through it, so a tracing hook
can record it and make its span current for the stage's own child spans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from conveyor.pipeline.result import PipelineResult, StageResult


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    stages: tuple[str, ...]
    attributes: dict[str, str] = field(default_factory=dict)


class Hooks(Protocol):
    def on_run_start(self, run: RunInfo) -> None: ...

    def on_run_end(self, run: RunInfo, result: PipelineResult) -> None: ...

    def on_stage_start(self, stage: str) -> None: ...

    def on_stage_end(self, result: StageResult) -> None: ...

    def attempt(self, stage: str, number: int) -> AbstractContextManager[None]: ...


class NoHooks:
    """Hooks that do nothing; subclass and override what you need."""

    def on_run_start(self, run: RunInfo) -> None:
        return None

    def on_run_end(self, run: RunInfo, result: PipelineResult) -> None:
        return None

    def on_stage_start(self, stage: str) -> None:
        return None

    def on_stage_end(self, result: StageResult) -> None:
        return None

    @contextmanager
    def attempt(self, stage: str, number: int) -> Iterator[None]:
        yield


class HookGroup(NoHooks):
    """Several hooks called in order (attempt contexts nested in order)."""

    def __init__(self, hooks: Sequence[Hooks]) -> None:
        self.hooks = tuple(hooks)

    def on_run_start(self, run: RunInfo) -> None:
        for hook in self.hooks:
            hook.on_run_start(run)

    def on_run_end(self, run: RunInfo, result: PipelineResult) -> None:
        for hook in self.hooks:
            hook.on_run_end(run, result)

    def on_stage_start(self, stage: str) -> None:
        for hook in self.hooks:
            hook.on_stage_start(stage)

    def on_stage_end(self, result: StageResult) -> None:
        for hook in self.hooks:
            hook.on_stage_end(result)

    @contextmanager
    def attempt(self, stage: str, number: int) -> Iterator[None]:
        with ExitStack() as stack:
            for hook in self.hooks:
                stack.enter_context(hook.attempt(stage, number))
            yield
