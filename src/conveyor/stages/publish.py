"""The ``publish`` stage: push ``registry/repo:<full sha>`` once, return the digest ref."""

from __future__ import annotations

from conveyor.errors import TagExistsError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.policy.rules import enforce
from conveyor.stages.context import DeliveryContext, built_image


async def run_publish(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Refuse mutable tags and disallowed registries, never overwrite a tag, push.

    Raises:
        PolicyError: the address breaks the policy.
        TagExistsError: the SHA tag is already in the registry.
    """
    registry = ctx.config.registry
    address = ctx.address
    policy = ctx.config.policy.model_copy(update={"require_digest": False})
    enforce(address, policy)
    if await ctx.engine.tag_exists(address, insecure=registry.insecure, auth=ctx.registry_auth):
        raise TagExistsError(address)
    ref = await ctx.engine.publish(
        built_image(inputs["build"]), address, insecure=registry.insecure, auth=ctx.registry_auth
    )
    digest = ref.rpartition("@")[2]
    return {"image.ref": ref, "image.digest": digest, "image.address": address}
