"""The waterfall: text a user reads, from span records alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conveyor.secrets import Redactor, Secret
from conveyor.telemetry.setup import start_tracing
from conveyor.telemetry.store import RunStore
from conveyor.telemetry.waterfall import format_duration, ordered, waterfall

from . import helpers
from .records import SPANS, WATERFALL, span

pytestmark = pytest.mark.timeout(30)


def test_spans_become_a_waterfall_indented_by_depth_with_scaled_bars() -> None:
    assert waterfall(SPANS, width=20).plain == WATERFALL


def test_the_waterfall_does_not_depend_on_the_order_spans_finished() -> None:
    assert waterfall(tuple(reversed(SPANS)), width=20).plain == WATERFALL


def test_statuses_are_coloured() -> None:
    text = waterfall(SPANS, width=20)

    styles = {text.plain[s.start : s.end]: str(s.style) for s in text.spans}
    assert styles["failed "] == "red"
    assert styles["success"] == "green"
    assert styles["skipped"] == "yellow"


def test_a_span_whose_parent_is_missing_is_shown_as_a_root() -> None:
    orphan = span("late child", "f1", "99", 500, 700)
    rows = ordered((*SPANS, orphan))

    assert [(depth, s.name) for depth, s in rows][-1] == (0, "late child")


def test_no_spans() -> None:
    assert waterfall(()).plain == "no spans recorded"


@pytest.mark.parametrize(
    ("nanoseconds", "shown"),
    [
        (0, "0ms"),
        (849_600_000, "850ms"),
        (2_345_000_000, "2.35s"),
        (59_994_000_000, "59.99s"),
        (187_000_000_000, "3m07s"),
    ],
)
def test_durations_for_people(nanoseconds: int, shown: str) -> None:
    assert format_duration(nanoseconds) == shown


@pytest.mark.anyio
async def test_a_traced_run_round_trips_through_the_store_into_the_waterfall(
    tmp_path: Path,
) -> None:
    tracing = start_tracing(
        environ={},
        runs_dir=tmp_path,
        redactor=Redactor([Secret("REGISTRY_TOKEN", helpers.SECRET)]),
    )
    await helpers.drive_run(tracing.hooks, tracing.provider.get_tracer("stage-code"))

    run = RunStore(tmp_path).latest()
    lines = waterfall(run.spans, width=30).plain.splitlines()

    assert run.run_id == helpers.RUN_ID
    assert run.status == "failed"
    # name and status columns (durations and bars depend on the clock);
    # siblings by start time: the stage tasks started in this order
    rows = [re.match(r"^( *\S.*?) {2,}(\S+) ", line).groups() for line in lines[1:]]  # type: ignore[union-attr]
    assert rows == [
        ("conveyor.run", "failed"),
        ("  stage test", "success"),
        ("    attempt 1", "success"),
        ("      test work 1", "ok"),
        ("        test child 1", "ok"),
        ("  stage build", "success"),
        ("    attempt 1", "failed"),
        ("      build work 1", "ok"),
        ("        build child 1", "ok"),
        ("    attempt 2", "success"),
        ("      build work 2", "ok"),
        ("        build child 2", "ok"),
        ("  stage scan", "failed"),
        ("    attempt 1", "failed"),
        ("      scan work 1", "ok"),
        ("        scan child 1", "ok"),
        ("    attempt 2", "failed"),
        ("      scan work 2", "ok"),
        ("        scan child 2", "ok"),
    ]
    assert all(line.endswith("│") and len(line) == len(lines[0]) for line in lines)
