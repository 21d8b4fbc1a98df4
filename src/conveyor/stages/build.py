"""The ``build`` stage: the image from the Dockerfile, labelled with its source."""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.engines.port import BuildSpec
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.secrets import Secret
from conveyor.stages.context import UNPUBLISHABLE, DeliveryContext
from conveyor.stages.source import source_epoch, unpublishable


def oci_labels(ctx: DeliveryContext, created: datetime, title: str | None = None) -> dict[str, str]:
    """The OCI annotations every image carries (revision, source, version, title)."""
    labels = {
        "org.opencontainers.image.revision": ctx.sha,
        "org.opencontainers.image.version": ctx.sha,
        "org.opencontainers.image.title": title or ctx.config.app.name,
        "org.opencontainers.image.created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if ctx.config.app.source_url:
        labels["org.opencontainers.image.source"] = ctx.config.app.source_url
    return labels


async def run_build(
    ctx: DeliveryContext, inputs: StageInputs, *, image: str | None = None
) -> Outputs:
    """Build the application image; ``GIT_SHA`` is always passed as a build arg.

    When the context is not exactly commit ``ctx.sha`` (uncommitted changes,
    another checkout: :func:`~conveyor.stages.source.unpublishable`), the
    output ``image.unpublishable`` says why: the gates still test the image,
    and publish refuses it.

    ``image`` names an ``[images.<name>]`` table (stage ``build-<name>``);
    ``None`` builds the ``[app]`` one.

    The commit time (``SOURCE_DATE_EPOCH`` when set) is the image's creation
    time, in its config and its ``created`` label, so that two builds of one
    commit give the same image; without a known commit time the clock is used.
    """
    app = ctx.config.app
    wanted = ctx.config.image_spec(image)
    epoch = await source_epoch(ctx.config.resolve(app.source), ctx.sha)
    created = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    title = app.name if wanted.suffix is None else f"{app.name}-{wanted.name}"
    spec = BuildSpec(
        context=ctx.config.resolve(wanted.context),
        dockerfile=wanted.dockerfile,
        build_args={**wanted.build_args, "GIT_SHA": ctx.sha},
        labels=oci_labels(ctx, created, title),
        target=wanted.target,
        platforms=wanted.platforms,
        secrets=tuple(Secret.from_env(name) for name in ctx.config.stages.build.secrets),
        tag=f"localhost/conveyor/{title}:{ctx.sha}",
        ca_bundle=ctx.config.run.ca_bundle,
        timestamp=epoch,
    )
    built = await ctx.engine.build(spec)
    outputs = {
        "image.id": built.id,
        "image.local_ref": built.local_ref,
        "image.platforms": ",".join(built.platforms),
    }
    # after the build, so that an edit made while it ran counts too
    refusal = await unpublishable(spec.context, spec.dockerfile, ctx.sha)
    if refusal is not None:
        outputs[UNPUBLISHABLE] = refusal
    return outputs
