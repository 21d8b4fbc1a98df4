"""The scheduler: runs every ready stage concurrently under a capacity limit.

The loop is graphlib's ready/done loop spread over anyio tasks: a stage whose
dependencies have all resolved is *decided* — launched, or recorded as
skipped with the reason — and a finished stage resolves its dependents in
turn.  After a failure no new stage starts (fail-fast); running stages finish
(``on_failure="finish"``) or are cancelled (``"cancel"``); ``always`` stages
still run once their own dependencies have resolved.

An :class:`Interruption` (the CLI sets it on SIGINT, SIGTERM or SIGHUP)
cancels a run the same way: every running stage is cancelled (its processes
are killed, its cleanup runs), no new stage starts -- each is recorded as
cancelled with the reason -- and ``always`` stages (the report) still run.

Errors never escape a stage: each becomes a :class:`StageResult`.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from conveyor.errors import StageTimeoutError
from conveyor.pipeline.graph import Outputs, Pipeline, Selection, Stage
from conveyor.pipeline.hooks import Hooks, NoHooks, RunInfo, wraps_attempts
from conveyor.pipeline.result import PipelineResult, StageResult, Status

OnFailure = Literal["finish", "cancel"]
Sleep = Callable[[float], Awaitable[None]]


class Interruption:
    """A request from outside the run (a signal) to cancel it; the first reason wins.

    Made inside the event loop.  :meth:`interrupt` may be called from a signal
    receiver task at any time, also before the run starts.
    """

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.reason = ""

    def interrupt(self, reason: str) -> None:
        """Ask the run to stop: ``reason`` says why (``interrupted by SIGTERM``)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def requested(self) -> bool:
        """Whether :meth:`interrupt` was called."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Return once :meth:`interrupt` was called."""
        await self._event.wait()


def new_run_id() -> str:
    """A sortable run id: UTC timestamp and a random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def is_retryable(error: BaseException) -> bool:
    """Errors that say so (``retryable = False``) are permanent: a retry cannot help."""
    return bool(getattr(error, "retryable", True))


def retry_delay(stage: Stage, attempt: int) -> float:
    """Exponential backoff with +-20% jitter before attempt ``attempt + 1``."""
    base = stage.backoff * (2 ** (attempt - 1))
    return float(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not cryptography


async def run_pipeline(
    pipeline: Pipeline,
    *,
    capacity: int = 4,
    on_failure: OnFailure = "finish",
    hooks: Hooks | None = None,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    skip_reasons: Mapping[str, str] | None = None,
    run_id: str | None = None,
    attributes: dict[str, str] | None = None,
    sleep: Sleep = anyio.sleep,
    interruption: Interruption | None = None,
    meanwhile: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> PipelineResult:
    """Run ``pipeline`` and return every stage's result.

    Args:
        pipeline: The validated graph.
        capacity: How many stages may run at once.
        on_failure: After a failure, let running stages ``finish`` or ``cancel`` them.
        hooks: Lifecycle hooks (tracing, display); called from the event loop.
        only: Run only these stages and what they need.
        skip: Skip these stages; their dependents are skipped too (except ``always`` ones).
        skip_reasons: Skip these stages as ``skip`` does, each with its reason.
        run_id: Identifier of this run (default: a new sortable id).
        attributes: Extra run attributes passed to the hooks (app, source sha ...).
        sleep: How to wait between retries (tests pass a recorder).
        interruption: Cancels the run when set (see the module docstring).
        meanwhile: Work done in the event loop while the stages wait (the
            delivery runner imports the later stages' modules): started once
            the first stages have started, cancelled when the run ends.  It
            must not raise; it holds up the stages only between its awaits.

    Raises:
        UnknownStageError: ``only`` or ``skip`` names a stage that does not exist.
    """
    selection = pipeline.select(only, skip, skip_reasons)
    run = _Run(
        pipeline=pipeline,
        selection=selection,
        capacity=capacity,
        on_failure=on_failure,
        hooks=hooks or NoHooks(),
        sleep=sleep,
        interruption=interruption or Interruption(),
        meanwhile=meanwhile,
    )
    info = RunInfo(run_id or new_run_id(), pipeline.order, dict(attributes or {}))
    return await run.execute(info)


class _Run:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        selection: Selection,
        capacity: int,
        on_failure: OnFailure,
        hooks: Hooks,
        sleep: Sleep,
        interruption: Interruption,
        meanwhile: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.meanwhile = meanwhile
        self.selection = selection
        self.capacity = capacity
        self.on_failure = on_failure
        self.hooks = hooks
        self.wraps_attempts = wraps_attempts(hooks)
        self.sleep = sleep
        self.interruption = interruption
        self.pending = {name: len(stage.needs) for name, stage in pipeline.stages.items()}
        self.results: dict[str, StageResult] = {}
        self.finished: list[StageResult] = []
        self.outputs: dict[str, Outputs] = {}
        self.inputs = MappingProxyType(self.outputs)
        self.running: dict[str, _Slot] = {}
        self.ready: deque[str] = deque()
        self.resolved: deque[StageResult] = deque()
        self.settling = False
        self.failure: str | None = None
        self.task_group: TaskGroup | None = None

    async def execute(self, info: RunInfo) -> PipelineResult:
        started = time.perf_counter()
        self.hooks.on_run_start(info)
        async with anyio.create_task_group() as watching:
            watching.start_soon(self._watch_interruption)
            async with anyio.create_task_group() as task_group:
                self.task_group = task_group
                for name in self.pipeline.order:
                    if self.pending[name] == 0:
                        self._decide(name)
                self._settle()
                if self.meanwhile is not None:  # queued after the first stages: they start first
                    watching.start_soon(self.meanwhile, name="meanwhile")
            watching.cancel_scope.cancel()
        result = PipelineResult(info.run_id, tuple(self.finished), time.perf_counter() - started)
        self.hooks.on_run_end(info, result)
        return result

    async def _watch_interruption(self) -> None:
        await self.interruption.wait()
        for running, slot in self.running.items():
            if not self.pipeline[running].always:
                slot.cancel()

    def _interrupted(self, stage: Stage) -> StageResult | None:
        """The result of a stage that is not started because the run was interrupted."""
        if not self.interruption.requested or stage.always:
            return None
        reason = f"not started: {self.interruption.reason}"
        return StageResult(stage.name, Status.CANCELLED, reason)

    def _decide(self, name: str) -> None:
        """All of ``name``'s dependencies have resolved: queue it, or record why not."""
        reason = self._reason_not_to_run(self.pipeline[name])
        interrupted = self._interrupted(self.pipeline[name])
        if reason is None and interrupted is not None:
            self.resolved.append(interrupted)  # it would have run: cancelled, not skipped
            return
        if reason is None:
            self.ready.append(name)
        else:
            self.resolved.append(StageResult(name, Status.SKIPPED, reason))

    def _reason_not_to_run(self, stage: Stage) -> str | None:
        if stage.name in self.selection.skipped:
            return self.selection.skipped[stage.name]
        if stage.always:
            return None
        for dependency in stage.needs:
            status = self.results[dependency].status
            if status is not Status.SUCCESS:
                verb = {"failed": "failed", "skipped": "was skipped", "cancelled": "was cancelled"}
                return f"dependency {dependency!r} {verb[status.value]}"
        if self.failure is not None:
            return f"not started: stage {self.failure!r} failed (fail-fast)"
        return None

    def _finish(self, result: StageResult) -> None:
        """A stage task ended: record it and move the run on."""
        self.resolved.append(result)
        self._settle()

    def _settle(self) -> None:
        """Record resolved stages, decide their dependents, start what capacity allows.

        A worklist, not recursion: a failure early in a long chain resolves
        thousands of skipped stages without growing the stack.
        """
        if self.settling:
            return
        self.settling = True
        try:
            while self.resolved or (self.ready and len(self.running) < self.capacity):
                if self.resolved:
                    self._record(self.resolved.popleft())
                    continue
                name = self.ready.popleft()
                stage = self.pipeline[name]
                interrupted = self._interrupted(stage)
                if interrupted is not None:
                    self.resolved.append(interrupted)
                    continue
                if self.failure is not None and not stage.always:
                    reason = f"not started: stage {self.failure!r} failed (fail-fast)"
                    self.resolved.append(StageResult(name, Status.SKIPPED, reason))
                    continue
                assert self.task_group is not None
                slot = self.running[name] = _Slot()
                self.task_group.start_soon(self._execute, stage, slot, name=f"stage {name}")
        finally:
            self.settling = False

    def _record(self, result: StageResult) -> None:
        self.results[result.name] = result
        self.finished.append(result)
        self.hooks.on_stage_end(result)
        if result.status is Status.FAILED and self.failure is None:
            self.failure = result.name
            if self.on_failure == "cancel":
                for running, slot in self.running.items():
                    if not self.pipeline[running].always:
                        slot.cancel()
        for dependent in self.pipeline.dependents(result.name):
            self.pending[dependent] -= 1
            if self.pending[dependent] == 0:
                self._decide(dependent)

    async def _execute(self, stage: Stage, slot: _Slot) -> None:
        name = stage.name
        self.hooks.on_stage_start(name)
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            error = await self._attempt(stage, attempt, slot)
            if error is None:
                outputs = self.outputs.get(name, {})
                result = StageResult(
                    name, Status.SUCCESS, "", time.perf_counter() - started, attempt, outputs,
                    started_at=started,
                )  # fmt: skip
                break
            if error is _CANCELLED:
                result = self._cancelled(stage, started, attempt)
                break
            if attempt > stage.retries or not is_retryable(error):
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                result = StageResult(
                    name, Status.FAILED, reason, time.perf_counter() - started, attempt,
                    self.outputs.get(name, {}), error, started_at=started,
                )  # fmt: skip
                break
            if not await self._pause(slot, retry_delay(stage, attempt)):
                result = self._cancelled(stage, started, attempt)
                break
        del self.running[name]
        self._finish(result)

    def _cancelled(self, stage: Stage, started: float, attempts: int) -> StageResult:
        why = (
            f"cancelled: {self.interruption.reason}"
            if self.interruption.requested
            else f"cancelled after stage {self.failure!r} failed"
        )
        return StageResult(
            stage.name,
            Status.CANCELLED,
            why,
            duration=time.perf_counter() - started,
            attempts=attempts,
            started_at=started,
        )

    async def _attempt(self, stage: Stage, number: int, slot: _Slot) -> BaseException | None:
        """Run one attempt: ``None`` on success, the error, or ``_CANCELLED``.

        The attempt runs in its own cancel scope, which is also its timeout
        (the scope's deadline): one scope per attempt, whether or not the stage
        has a timeout.  The scope ends inside the attempt hooks, so that they
        see a timeout as the stage's error and a cancellation as one.
        """
        if slot.cancelled:  # cancelled before this attempt could start
            return _CANCELLED
        deadline = math.inf if stage.timeout is None else anyio.current_time() + stage.timeout
        slot.scope = anyio.CancelScope(deadline=deadline)
        try:
            if self.wraps_attempts:
                with self.hooks.attempt(stage.name, number):
                    outputs = await self._within(stage, slot)
            else:
                outputs = await self._within(stage, slot)
        except _Cancelled:
            return _CANCELLED
        except Exception as error:  # noqa: BLE001 - a stage's failure is a result
            return error
        self.outputs[stage.name] = dict(outputs or {})
        return None

    async def _within(self, stage: Stage, slot: _Slot) -> Outputs | None:
        """``stage.run`` in the attempt's scope; a cancelled scope says why it ended."""
        assert slot.scope is not None
        with slot.scope:
            return await stage.run(self.inputs)
        if slot.cancelled:  # the scope caught a cancellation: a request, or the deadline
            raise _Cancelled
        assert stage.timeout is not None
        raise StageTimeoutError(stage.name, stage.timeout)

    async def _pause(self, slot: _Slot, seconds: float) -> bool:
        """Wait before a retry; ``False`` when the stage was cancelled meanwhile."""
        if slot.cancelled:
            return False
        slot.scope = anyio.CancelScope()
        with slot.scope:
            await self.sleep(seconds)
        return not slot.cancelled


class _Slot:
    """A running stage: the cancel scope of what it does now, and whether it was cancelled."""

    __slots__ = ("cancelled", "scope")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


class _Cancelled(BaseException):
    """Leaves the attempt hooks of a cancelled attempt (a cancellation, not an error)."""


_CANCELLED = _Cancelled()
