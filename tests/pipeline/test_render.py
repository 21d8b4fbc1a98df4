"""The terminal tree of ``conveyor graph``: each stage once, wrapped under its guides."""

from __future__ import annotations

from conveyor.pipeline.graph import Outputs, Pipeline, Stage, StageInputs
from conveyor.pipeline.render import to_tree


async def noop(inputs: StageInputs) -> Outputs | None:
    return None


PIPELINE = Pipeline(
    [
        Stage("test", noop, description="unit tests"),
        Stage("build", noop, description="build the image"),
        Stage("scan", noop, needs=("build",), description="scan it"),
        Stage("publish", noop, needs=("test", "scan"), description="push it to the registry"),
        Stage("report", noop, needs=("publish",), always=True),
    ]
)


def test_each_stage_hangs_under_the_last_stage_it_needs() -> None:
    assert to_tree(PIPELINE, "pipeline") == (
        "pipeline\n"
        "├── test - unit tests\n"
        "└── build - build the image\n"
        "    └── scan - scan it\n"
        "        └── publish (also needs test) - push it to the registry\n"
        "            └── report (always runs)\n"
    )


def test_long_lines_wrap_under_their_guide() -> None:
    drawn = to_tree(PIPELINE, "pipeline", width=40)

    assert drawn.splitlines()[4:7] == [
        "        └── publish (also needs test) -",
        "            push it to the registry",
        "            └── report (always runs)",
    ]
    assert max(len(line) for line in drawn.splitlines()) <= 40


def test_a_stage_with_siblings_below_continues_its_guide() -> None:
    pipeline = Pipeline(
        [
            Stage("first", noop, description="a description long enough to wrap twice"),
            Stage("second", noop),
        ]
    )

    assert to_tree(pipeline, "p", width=30).splitlines() == [
        "p",
        "├── first - a description long",
        "│   enough to wrap twice",
        "└── second",
    ]


def test_notes_and_descriptions_are_dimmed_on_a_colour_terminal() -> None:
    lines = to_tree(PIPELINE, "pipeline", dim=True).splitlines()

    assert lines[1] == "├── test \x1b[2m- unit tests\x1b[0m"
    assert lines[5] == "            └── report \x1b[2m(always runs)\x1b[0m"
