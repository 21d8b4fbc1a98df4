"""The ``publish`` stage: push ``registry/repo:<full sha>`` once, return the digest ref.

A tag is never overwritten.  A re-run for the same commit (after a later
stage failed) finds its own image under the tag, recognised by the
``org.opencontainers.image.revision`` label the build stage sets, and reuses
the registry's digest instead of pushing; any other image under the tag is
refused.  On one host the check and the push of a tag are serialised
(:mod:`conveyor.stages.publish_lock`), so two pipelines of one commit push
once; the engine reads the tag back after its push.
"""

from __future__ import annotations

# The podman engine asks the registry over HTTP before and after its push: its
# client (and httpx) come with this module, which a run imports ahead of the stage
# (stages.delivery.import_ahead), not at the stage's first registry request.
import conveyor.registry.client  # noqa: F401
from conveyor.engines.port import RemoteImage
from conveyor.errors import PolicyError, TagExistsError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.policy.rules import check_publish_address, raise_for
from conveyor.stages.context import UNPUBLISHABLE, DeliveryContext, built_image
from conveyor.stages.publish_lock import publish_lock

REVISION_LABEL = "org.opencontainers.image.revision"
REUSED_NOTE = "already in the registry, not pushed again"


async def run_publish(
    ctx: DeliveryContext, inputs: StageInputs, *, image: str | None = None
) -> Outputs:
    """Refuse mutable tags and disallowed registries, never overwrite a tag, push.

    ``image`` names an ``[images.<name>]`` table (stage ``publish-<name>``,
    its own address ``registry/<repository>:<sha>``); ``None``: the ``[app]`` one.

    Outputs ``image.ref`` (``address@sha256:...``), ``image.digest``,
    ``image.address`` and ``reused``: ``"true"`` when the tag already held
    this commit's image, whose registry digest is then returned unpushed.

    Raises:
        PolicyError: the address breaks the policy, or the image was built
            from a source that is not this commit (uncommitted changes).
        TagExistsError: the SHA tag holds an image of another or no revision.
    """
    registry = ctx.config.registry
    spec = ctx.config.image_spec(image)
    address = ctx.image_address(spec)
    raise_for(check_publish_address(address, ctx.config.policy))
    built = inputs[spec.stage("build")]
    if UNPUBLISHABLE in built:
        raise PolicyError(
            address,
            f"not commit {ctx.sha[:12]}: {built[UNPUBLISHABLE]}",
            hint="commit (or stash) the changes and run again; to try the gates on "
            "your edits without publishing, run with --skip publish",
        )
    async with publish_lock(address):
        remote = await ctx.engine.inspect_remote(
            address, insecure=registry.insecure, auth=ctx.registry_auth
        )
        if remote is not None:
            return reuse(ctx, address, remote)
        ref = await ctx.engine.publish(
            built_image(built),
            address,
            insecure=registry.insecure,
            auth=ctx.registry_auth,
        )
    digest = ref.rpartition("@")[2]
    return {"image.ref": ref, "image.digest": digest, "image.address": address, "reused": "false"}


def reuse(ctx: DeliveryContext, address: str, remote: RemoteImage) -> Outputs:
    """The outputs for an image already under ``address``, if this commit built it.

    Raises:
        TagExistsError: its revision label is missing or names another commit.
    """
    revision = remote.labels.get(REVISION_LABEL)
    if revision is None:
        raise TagExistsError(address, found=f"its image {remote.digest} has no {REVISION_LABEL}")
    if revision != ctx.sha:
        raise TagExistsError(
            address,
            found=f"its image {remote.digest} has {REVISION_LABEL}={revision}, not this commit",
        )
    return {
        "image.ref": f"{address}@{remote.digest}",
        "image.digest": remote.digest,
        "image.address": address,
        "reused": "true",
        "note": REUSED_NOTE,
    }
