"""Lifecycle hooks: how tracing, the live table and the run log watch a run.

The scheduler calls these and knows nothing of OpenTelemetry or terminals
(the Hamilton ``lifecycle`` pattern).  ``attempt`` wraps one attempt of a
stage; an exception raised by the stage passes through it, so a tracing hook
can record it and make its span current for the stage's own child spans.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # results are only passed through here
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

    def attempt(self, stage: str, number: int) -> AbstractContextManager[None]:
        return nullcontext()


def wraps_attempts(hooks: Hooks) -> bool:
    """Whether ``hooks`` does anything around an attempt (the scheduler skips it if not)."""
    if isinstance(hooks, HookGroup):
        return bool(hooks.attempting)
    return getattr(type(hooks), "attempt", None) is not NoHooks.attempt


class HookGroup(NoHooks):
    """Several hooks called in order (attempt contexts nested in order)."""

    def __init__(self, hooks: Sequence[Hooks]) -> None:
        self.hooks = tuple(hooks)
        self.attempting = tuple(hook for hook in self.hooks if wraps_attempts(hook))

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

    def attempt(self, stage: str, number: int) -> AbstractContextManager[None]:
        if len(self.attempting) == 1:
            return self.attempting[0].attempt(stage, number)
        return self._nested(stage, number)

    @contextmanager
    def _nested(self, stage: str, number: int) -> Iterator[None]:
        with ExitStack() as stack:
            for hook in self.attempting:
                stack.enter_context(hook.attempt(stage, number))
            yield
