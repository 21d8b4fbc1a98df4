"""``conveyor graph`` and ``conveyor plan``: the pipeline described, nothing run."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.run import ChangedSinceOption, ConfigOption, ImageOption
from conveyor.cli.stage_graph import GraphFormat, delivery_graph, draw

if TYPE_CHECKING:
    from conveyor.config.models import ImageSpec
    from conveyor.pipeline.graph import Pipeline
    from conveyor.stages.context import DeliveryContext


class PlanFormat(StrEnum):
    TEXT = "text"
    GITHUB_MATRIX = "github-matrix"
    GITLAB_MATRIX = "gitlab-matrix"


def graph(
    config: ConfigOption = None,
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="tree, mermaid, dot or json.")
    ] = GraphFormat.TREE,
) -> None:
    """Show the stage graph (a terminal tree, or Mermaid, dot, JSON)."""
    draw(config, format)


def plan(
    config: ConfigOption = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", metavar="STAGE", help="Plan only this stage and what it needs."),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", metavar="STAGE", help="Leave out this stage and its dependents."),
    ] = None,
    changed_since: ChangedSinceOption = None,
    image: ImageOption = None,
    validate: Annotated[
        list[str] | None,
        typer.Option("--validate", metavar="STAGES", help="As conveyor run --validate."),
    ] = None,
    format: Annotated[
        PlanFormat,
        typer.Option(
            "--format",
            "-f",
            help="text; or the images to deliver as a GitHub Actions matrix (JSON) "
            "or a GitLab parallel:matrix (YAML), one job per image.",
        ),
    ] = PlanFormat.TEXT,
) -> None:
    """Show what would run, with every reference resolved; nothing is built or pushed."""
    from conveyor.policy.rules import check_publish_address
    from conveyor.secrets import Redactor

    redact = Redactor()  # credentials written into a URL (https://user:token@host/...)
    from conveyor.stages.delivery import select_stages
    from conveyor.stages.validation import validation_names, validation_skips

    names = validation_names(validate or ())
    cfg, sha, pipeline, ctx = delivery_graph(config, None, changed_since, changes=True, image=image)
    changes = ctx.changes
    if format is not PlanFormat.TEXT:
        typer.echo(fan_out(ctx, format), nl=False)
        return
    _, _, selection = select_stages(
        cfg, pipeline, only or (), skip or (), validation_skips(ctx, pipeline, names)
    )
    typer.echo(f"plan for {cfg.app.name} at {sha}")
    if changes.known:
        typer.echo(f"changes since {changes.base}: {len(changes.files or ())} files")
    elif changed_since is not None or changes.base is not None:
        typer.echo(f"changes unknown ({changes.reason}): every stage runs")
    skipped = dict(selection.skipped)
    for name in pipeline.order:
        stage = pipeline[name]
        needs = f" (needs {', '.join(stage.needs)})" if stage.needs else ""
        missing = next((n for n in stage.needs if n in skipped), None)
        if missing and not stage.always and name not in skipped:
            skipped[name] = f"dependency {missing!r} is skipped"
        if name in skipped and not stage.always:
            typer.echo(f"\n{name}{needs}: skip - {skipped[name]}")
            continue
        typer.echo(f"\n{name}{needs}: {stage.description}")
        for key, value in stage.details.items():
            typer.echo(f"    {key}: {redact(value)}")
    violations = [
        violation
        for image in cfg.image_specs()
        for violation in check_publish_address(cfg.image_address(image, sha), cfg.policy)
    ]
    for violation in violations:
        typer.echo(f"\npolicy: {violation.message} ({violation.hint})", err=True)
    for refused, reason in refused_sources(ctx, pipeline, skipped):
        typer.echo(
            f"\nwarning: {refused.stage('publish')} would refuse the image: {reason} "
            "(commit or stash the changes, or run with --skip publish)",
            err=True,
        )
    if violations:
        raise typer.Exit(4)


def refused_sources(
    ctx: DeliveryContext, pipeline: Pipeline, skipped: Mapping[str, str]
) -> list[tuple[ImageSpec, str]]:
    """The images whose publish, selected, would refuse them now: the tree is not the commit."""
    import anyio

    from conveyor.stages.source import unpublishable

    async def look() -> list[tuple[ImageSpec, str]]:
        found: list[tuple[ImageSpec, str]] = []
        for image in ctx.config.image_specs():
            stage = image.stage("publish")
            if stage not in pipeline.order or stage in skipped:
                continue
            context = ctx.config.resolve(image.context)
            reason = await unpublishable(context, image.dockerfile, ctx.sha)
            if reason is not None:
                found.append((image, reason))
        return found

    return anyio.run(look)


def fan_out(ctx, format: PlanFormat) -> str:  # type: ignore[no-untyped-def]
    """The images to deliver, one CI job each: ``conveyor run --image NAME`` in every job.

    GitHub: ``{"include": [{"image": "api"}, ...]}`` for ``strategy.matrix``
    (``fromJSON``); an empty ``include`` means nothing to deliver.  GitLab:
    a ``parallel: matrix:`` entry with ``CONVEYOR_IMAGE_NAME``.
    """
    import json

    from conveyor.stages.delivery import delivered_images

    names = delivered_images(ctx)
    if format is PlanFormat.GITHUB_MATRIX:
        return json.dumps({"include": [{"image": name} for name in names]}) + "\n"
    if not names:
        return "parallel:\n  matrix: []\n"
    listed = ", ".join(json.dumps(name) for name in names)
    return f"parallel:\n  matrix:\n    - CONVEYOR_IMAGE_NAME: [{listed}]\n"
