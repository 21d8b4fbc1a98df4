"""``conveyor run``: the delivery pipeline, end to end."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class EngineName(StrEnum):
    AUTO = "auto"
    DAGGER = "dagger"
    PODMAN = "podman"


class OnFailure(StrEnum):
    FINISH = "finish"
    CANCEL = "cancel"


class Output(StrEnum):
    AUTO = "auto"
    LIVE = "live"
    PLAIN = "plain"


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", metavar="PATH", help="conveyor.toml or pyproject.toml to use."),
]
ChangedSinceOption = Annotated[
    str | None,
    typer.Option(
        "--changed-since",
        metavar="REF",
        help="Run stages with paths only when files under them changed since REF "
        "(default: the base CI names; none: everything runs).",
    ),
]
ImageOption = Annotated[
    list[str] | None,
    typer.Option(
        "--image",
        metavar="NAME",
        help="Deliver only this image (one job of a fan-out); the others are skipped.",
    ),
]
EngineOption = Annotated[
    EngineName, typer.Option("--engine", help="dagger, podman, or auto (Dagger when available).")
]


def run(
    config: ConfigOption = None,
    engine: EngineOption = EngineName.AUTO,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", metavar="STAGE", help="Run only this stage and what it needs (repeatable)."
        ),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            "--skip", metavar="STAGE", help="Skip this stage and its dependents (repeatable)."
        ),
    ] = None,
    capacity: Annotated[
        int | None,
        typer.Option("--capacity", min=1, metavar="N", help="Stages running at once."),
    ] = None,
    on_failure: Annotated[
        OnFailure | None, typer.Option("--on-failure", help="finish or cancel running stages.")
    ] = None,
    output: Annotated[
        Output, typer.Option("--output", help="live (table), plain (log lines), or auto.")
    ] = Output.AUTO,
    changed_since: ChangedSinceOption = None,
    image: ImageOption = None,
    validate: Annotated[
        list[str] | None,
        typer.Option(
            "--validate",
            metavar="STAGES",
            help="A validation run, nothing published or committed: 'gates' (every stage "
            'publish waits for) or the stages to run (repeat it, or one list: "test build").',
        ),
    ] = None,
    run_id_file: Annotated[
        Path | None,
        typer.Option(
            "--run-id-file",
            metavar="PATH",
            help="Write this run's id to PATH as soon as it starts: its records are in "
            ".conveyor/runs/<id>/ (for a CI step that collects them).",
        ),
    ] = None,
) -> None:
    """Run the pipeline: test, build, scan, smoke, publish, manifest (and verify, policy)."""
    import anyio

    from conveyor.cli.common import load, selected_images
    from conveyor.cli.runner import run_delivery
    from conveyor.stages.validation import validation_names

    names = validation_names(validate or ())
    cfg = load(config)
    images = selected_images(cfg, image)
    live = output is Output.LIVE or (
        output is Output.AUTO and sys.stdout.isatty() and not os.environ.get("CI")
    )
    code = anyio.run(
        lambda: run_delivery(
            cfg,
            engine_name=engine.value,
            only=tuple(only or ()),
            skip=tuple(skip or ()),
            capacity=capacity,
            on_failure=on_failure.value if on_failure else None,
            live=live,
            changed_since=changed_since,
            images=images,
            run_id_file=run_id_file,
            validate=names,
        )
    )
    if code:
        raise typer.Exit(code)
