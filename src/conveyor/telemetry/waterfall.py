"""A run's spans as a terminal waterfall, and the list of recorded runs.

Pure functions from :class:`~conveyor.telemetry.store.SpanRecord` values to
rich :class:`~rich.text.Text`: the CLI prints them, tests read ``.plain``.
Each span is one line: its name indented by depth, its status, its duration
and a bar placed and scaled on the run's wall time::

    span                          status     duration  │0                   2.00s│
    conveyor.run                  failed        2.00s  │━━━━━━━━━━━━━━━━━━━━━━━━━│
      stage build                 success       1.20s  │━━━━━━━━━━━━━━━         │
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.text import Text

from conveyor.telemetry.store import Run, SpanRecord

BAR = "━"
EDGE = "│"
INDENT = "  "

STYLES = {
    "success": "green",
    "ok": "green",
    "failed": "red",
    "error": "red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "unfinished": "magenta",
}


def format_duration(nanoseconds: int) -> str:
    """A duration for people: ``850ms``, ``2.35s``, ``3m07s``."""
    seconds = nanoseconds / 1e9
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def format_time(nanoseconds: int) -> str:
    """A wall-clock time in UTC, to the second."""
    moment = datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def status_of(span: SpanRecord) -> str:
    """What a span's line shows: its ``conveyor.status``, else its OpenTelemetry status."""
    status = span.attributes.get("conveyor.status")
    if isinstance(status, str):
        return status
    return "error" if span.status == "error" else "ok"


def ordered(spans: Sequence[SpanRecord]) -> list[tuple[int, SpanRecord]]:
    """Spans depth-first with their depth; siblings by start time.

    A span whose parent is not among ``spans`` (the run span under a
    ``TRACEPARENT``, or a child of a span that never finished) is a root.
    """
    ids = {span.span_id for span in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: (s.start, s.name))
    rows: list[tuple[int, SpanRecord]] = []

    def visit(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            rows.append((depth, span))
            visit(span.span_id, depth + 1)

    visit(None, 0)
    return rows


def waterfall(spans: Sequence[SpanRecord], *, width: int = 40) -> Text:
    """The spans as a waterfall: one line each, bars scaled to the run's wall time.

    Args:
        spans: The spans of one run, in any order.
        width: How many characters the bars span.

    Returns:
        The lines, styled by status (``.plain`` is the text without style).
    """
    rows = ordered(spans)
    if not rows:
        return Text("no spans recorded")
    begin = min(span.start for _, span in rows)
    wall = max(max(span.end for _, span in rows) - begin, 1)
    names = [INDENT * depth + span.name for depth, span in rows]
    statuses = [status_of(span) for _, span in rows]
    name_width = max(len("span"), *(len(n) for n in names))
    status_width = max(len("status"), *(len(s) for s in statuses))
    total = format_duration(wall)
    scale = "0" + total.rjust(width - 1) if width > len(total) else total[:width]

    text = Text()
    text.append(f"{'span':<{name_width}}  {'status':<{status_width}}  {'duration':>8}  ")
    text.append(f"{EDGE}{scale}{EDGE}\n", style="dim")
    for (_, span), name, status in zip(rows, names, statuses, strict=True):
        offset = min(round((span.start - begin) * width / wall), width - 1)
        length = min(max(1, round(span.duration * width / wall)), width - offset)
        style = STYLES.get(status, "")
        text.append(f"{name:<{name_width}}  ")
        text.append(f"{status:<{status_width}}", style=style)
        text.append(f"  {format_duration(span.duration):>8}  {EDGE}")
        text.append(" " * offset)
        text.append(BAR * length, style=style or "cyan")
        text.append(" " * (width - offset - length) + EDGE + "\n")
    text.rstrip()
    return text


def run_header(run: Run) -> Text:
    """One line naming the run: id, status, duration, start and trace id."""
    root = run.root
    trace_id = root.trace_id if root else (run.spans[0].trace_id if run.spans else "-")
    text = Text(f"run {run.run_id}  ")
    text.append(run.status, style=STYLES.get(run.status, ""))
    text.append(
        f"  {format_duration(run.duration)}  started {format_time(run.started)}  trace {trace_id}"
    )
    return text


def run_table(runs: Sequence[Run]) -> Text:
    """The recorded runs, one line each, in the order given (newest first)."""
    rows = [
        (
            run.run_id,
            format_time(run.started),
            format_duration(run.duration),
            run.status,
            str(sum(1 for s in run.spans if s.name.startswith("stage "))),
        )
        for run in runs
    ]
    heading = ("run", "started", "duration", "status", "stages")
    widths = [max(len(row[i]) for row in [heading, *rows]) for i in range(len(heading))]
    text = Text()
    for number, row in enumerate([heading, *rows]):
        run_id, started, duration, status, stages = row
        text.append(f"{run_id:<{widths[0]}}  {started:<{widths[1]}}  {duration:>{widths[2]}}  ")
        text.append(f"{status:<{widths[3]}}", style=STYLES.get(status, "") if number else "")
        text.append(f"  {stages:>{widths[4]}}\n")
    text.rstrip()
    return text
