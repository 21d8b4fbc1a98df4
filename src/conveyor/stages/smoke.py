"""The ``smoke`` and ``verify`` stages: HTTP probes of the new version.

``smoke`` runs the built image as a service before anything is published and
probes it; ``verify`` probes the environment's URL after the manifest commit
until the GitOps controller has rolled the new version out.
"""

from __future__ import annotations

from conveyor.engines.port import ServiceSpec
from conveyor.errors import ConfigError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.smoke.probe import probe_version
from conveyor.stages.context import DeliveryContext, built_image

SERVICE_FIRST_INTERVAL = 0.1
"""Seconds before the second probe of the service (the wait then grows by half each time)."""


async def run_smoke(
    ctx: DeliveryContext, inputs: StageInputs, *, image: str | None = None
) -> Outputs:
    """Start the image, probe ``stages.smoke.path`` until it proves the source SHA.

    ``image`` names an ``[images.<name>]`` table (stage ``smoke-<name>``);
    ``None``: the ``[app]`` one.  Every image is probed with the same options.

    What proves it is ``[stages.smoke]``'s contract (status, body_contains,
    json, prove_version; by default the ``version`` field or the body).

    Raises:
        SmokeError: the service did not serve the expected version before the deadline.
    """
    options = ctx.config.stages.smoke
    build = ctx.config.image_spec(image).stage("build")
    spec = ServiceSpec(built_image(inputs[build]), options.port)
    async with ctx.engine.service(spec) as endpoint:
        url = endpoint.url + options.path
        # A local container answers within a second or so: ask often at first.
        result = await probe_version(
            url,
            ctx.sha,
            deadline=options.deadline,
            interval=SERVICE_FIRST_INTERVAL,
            contract=options.contract(),
            consecutive=options.passes,
        )
    return {"url": url, "attempts": str(result.attempts)}


async def run_verify(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Probe the environment URL until it serves the new version.

    Raises:
        SmokeError: the environment did not serve it before its timeout.
    """
    environment = ctx.config.stages.manifest.environment
    target = ctx.config.smoke.get(environment)
    if target is None:
        raise ConfigError(None, f"smoke.{environment}", "no URL configured for this environment")
    result = await probe_version(
        target.url, ctx.sha, deadline=target.timeout, contract=target.contract()
    )
    return {"url": target.url, "attempts": str(result.attempts)}
