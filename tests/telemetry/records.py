"""A recorded run with fixed times, as the run store holds it."""

from __future__ import annotations

from conveyor.telemetry.store import AttributeValue, RunStore, SpanRecord

SECOND = 1_000_000_000
MS = SECOND // 1000
T0 = 1_735_787_045 * SECOND  # 2025-01-02 03:04:05Z
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
RUN_ID = "20250102T030405Z-abc123"


def span(  # noqa: PLR0917 - a table of spans reads best positionally
    name: str,
    span_id: str,
    parent: str | None,
    start_ms: int,
    end_ms: int,
    status: str = "unset",
    **attributes: AttributeValue,
) -> SpanRecord:
    return SpanRecord(
        name,
        TRACE,
        span_id * 8,
        parent * 8 if parent else None,
        T0 + start_ms * MS,
        T0 + end_ms * MS,
        status,
        "",
        {k.replace("_", "."): v for k, v in attributes.items()},
    )


# In the order they finish, as the recorder appends them.
SPANS = (
    span("attempt 1", "a1", "b1", 0, 600, "error", conveyor_status="failed"),
    span("attempt 1", "a3", "c1", 0, 1000, "ok", conveyor_status="success"),
    span("pytest", "d1", "a3", 100, 900),
    span("stage test", "c1", "r0", 0, 1000, "ok", conveyor_status="success"),
    span("attempt 2", "a2", "b1", 800, 1600, "ok", conveyor_status="success"),
    span("stage build", "b1", "r0", 0, 1600, "ok", conveyor_status="success"),
    span("stage scan", "e1", "r0", 1600, 1600, conveyor_status="skipped"),
    span(
        "conveyor.run",
        "r0",
        None,
        0,
        2000,
        "error",
        conveyor_status="failed",
        **{"conveyor_run_id": RUN_ID},
    ),
)

WATERFALL = """\
span           status   duration  │0              2.00s│
conveyor.run   failed      2.00s  │━━━━━━━━━━━━━━━━━━━━│
  stage build  success     1.60s  │━━━━━━━━━━━━━━━━    │
    attempt 1  failed      600ms  │━━━━━━              │
    attempt 2  success     800ms  │        ━━━━━━━━    │
  stage test   success     1.00s  │━━━━━━━━━━          │
    attempt 1  success     1.00s  │━━━━━━━━━━          │
      pytest   ok          800ms  │ ━━━━━━━━           │
  stage scan   skipped       0ms  │                ━   │"""


def record_runs(store: RunStore) -> None:
    """The run above, plus an older successful one and a newer unfinished one."""
    store.write(RUN_ID, SPANS)
    older = "20250101T120000Z-0f0f0f"
    store.write(
        older,
        [
            span(
                "stage test", "c2", "r2", -54_245_000, -54_244_500, "ok", conveyor_status="success"
            ),
            span(
                "conveyor.run",
                "r2",
                None,
                -54_245_000,
                -54_244_000,
                "ok",
                conveyor_status="success",
                **{"conveyor_run_id": older},
            ),
        ],
    )
    store.write(
        "20250102T040000Z-ffffff",
        [span("stage build", "b3", "r3", 3_355_000, 3_400_000, "ok", conveyor_status="success")],
    )
