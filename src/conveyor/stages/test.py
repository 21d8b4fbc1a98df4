"""The ``test`` stage: the unit tests, in the configured image, source mounted."""

from __future__ import annotations

from conveyor.errors import ConfigError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.stages.container import ContainerCommand, run_in_container
from conveyor.stages.context import DeliveryContext


async def run_test(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Run the test command; collect the JUnit report even when tests fail.

    Raises:
        TestsFailedError: the command exited non-zero.
    """
    options = ctx.config.stages.test
    if options is None:
        raise ConfigError(ctx.config.root / "conveyor.toml", "stages.test", "is not configured")
    command = ContainerCommand(
        image=options.image,
        command=tuple(options.command),
        source=ctx.config.resolve(ctx.config.app.source),
        env=dict(options.env),
        secrets=tuple(options.secrets),
        caches=dict(options.caches),
        junit=options.junit,
    )
    return await run_in_container(ctx, "test", command, tests=True)
