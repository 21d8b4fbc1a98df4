"""``Journal``: a hook that keeps every stage's result as the run resolves it.

A stage that reports on the run (the delivery pipeline's always-run
``report``) sees only the outputs of successful stages in its inputs; the
journal gives it the rest -- failures, skips with their reason, durations
and attempts -- without the scheduler knowing what a report is.  Pass the
journal among the run's hooks; every stage a stage needs has resolved, and
so is in the journal, before that stage starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from conveyor.pipeline.hooks import NoHooks

if TYPE_CHECKING:  # a context holds a journal to describe a pipeline too (graph, plan)
    from conveyor.pipeline.hooks import RunInfo
    from conveyor.pipeline.result import StageResult


class Journal(NoHooks):
    """The results of the stages resolved so far, in the order they resolved."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self._results: dict[str, StageResult] = {}

    def on_run_start(self, run: RunInfo) -> None:
        self.run_id = run.run_id
        self._results.clear()

    def on_stage_end(self, result: StageResult) -> None:
        self._results[result.name] = result

    @property
    def results(self) -> Mapping[str, StageResult]:
        """Every resolved stage's result, by name (read-only)."""
        return MappingProxyType(self._results)
