"""How a run shows itself: a live stage table on a terminal, timestamped lines in CI logs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from conveyor.pipeline.hooks import NoHooks, RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status

_STYLE = {
    Status.SUCCESS: "green",
    Status.FAILED: "bold red",
    Status.SKIPPED: "yellow",
    Status.CANCELLED: "magenta",
}
_SHOWN_OUTPUTS = ("image.ref", "note", "commit", "tests", "failures", "blocking", "url")


def describe(result: StageResult) -> str:
    """One short line: the reason, or the outputs worth showing."""
    if result.reason:
        return result.reason
    return " ".join(f"{k}={result.outputs[k]}" for k in _SHOWN_OUTPUTS if k in result.outputs)


def result_table(
    order: Sequence[str],
    results: dict[str, StageResult],
    running: dict[str, float],
    title: str = "",
) -> Table:
    """The stage table: status, duration, attempts and a note per stage."""
    table = Table(title=title or None, show_edge=False, pad_edge=False)
    table.add_column("stage")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("tries", justify="right")
    table.add_column("note", overflow="fold")
    now = time.perf_counter()
    for name in order:
        if name in results:
            r = results[name]
            status = f"[{_STYLE[r.status]}]{r.status.value}[/]"
            table.add_row(name, status, f"{r.duration:.1f}s", str(r.attempts or ""), describe(r))
        elif name in running:
            table.add_row(name, "[cyan]running[/]", f"{now - running[name]:.1f}s", "", "")
        else:
            table.add_row(name, "[dim]waiting[/]", "", "", "")
    return table


class LiveTable(NoHooks):
    """A rich table redrawn as stages start and finish (interactive terminals)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.order: tuple[str, ...] = ()
        self.results: dict[str, StageResult] = {}
        self.running: dict[str, float] = {}
        self.live: Live | None = None

    def _table(self) -> Table:
        return result_table(self.order, self.results, self.running)

    def on_run_start(self, run: RunInfo) -> None:
        self.order = run.stages
        self.live = Live(get_renderable=self._table, console=self.console, refresh_per_second=8)
        self.live.start()

    def on_stage_start(self, stage: str) -> None:
        self.running[stage] = time.perf_counter()

    def on_stage_end(self, result: StageResult) -> None:
        self.running.pop(result.name, None)
        self.results[result.name] = result

    def on_run_end(self, run: RunInfo, result: PipelineResult) -> None:
        if self.live is not None:
            self.live.stop()


class PlainLog(NoHooks):
    """Timestamped lines, one per event, for CI logs."""

    def __init__(
        self,
        stream: TextIO | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.stream = stream or sys.stdout
        self.clock = clock

    def _line(self, text: str) -> None:
        now = self.clock()
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S") + f".{now.microsecond // 1000:03d}Z"
        print(f"{stamp} {text}", file=self.stream, flush=True)

    def on_run_start(self, run: RunInfo) -> None:
        self._line(f"run {run.run_id} started: {', '.join(run.stages)}")

    def on_stage_start(self, stage: str) -> None:
        self._line(f"{stage}: started")

    @contextmanager
    def attempt(self, stage: str, number: int) -> Iterator[None]:
        if number > 1:
            self._line(f"{stage}: attempt {number}")
        yield

    def on_stage_end(self, result: StageResult) -> None:
        note = describe(result)
        timing = f" in {result.duration:.1f}s" if result.attempts else ""
        self._line(f"{result.name}: {result.status.value}{timing}" + (f" ({note})" if note else ""))

    def on_run_end(self, run: RunInfo, result: PipelineResult) -> None:
        verdict = "succeeded" if result.ok else "failed"
        self._line(f"run {run.run_id} {verdict} in {result.duration:.1f}s")
