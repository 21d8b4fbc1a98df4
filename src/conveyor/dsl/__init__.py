"""Python pipelines: stages written as async functions, in the DAG conveyor.toml describes.

``run.pipeline = "pipeline.py"`` in conveyor.toml names a file whose
``@stage`` functions join the pipeline, in definition order, beside the
built-in stages and the ``[stages.<name>]`` tables::

    from conveyor.dsl import Service, StageContext, stage

    @stage(needs=["test"], description="lint with ruff")
    async def lint(ctx: StageContext) -> dict[str, str]:
        ran = await ctx.run("127.0.0.1:5000/tools/ruff:0.6.9", ["ruff", "check", "."])
        return {"log": str(ran.log)}

    @stage(needs=["lint"], gate=False)
    async def notify(ctx: StageContext) -> None:
        print(ctx.outputs["lint"]["log"])

    @stage(name="smoke", replaces=True)
    async def smoke(ctx: StageContext) -> dict[str, str]:
        outputs = await ctx.builtin()  # the built-in smoke test, then more
        return {**outputs, "checked": "yes"}

A stage returns ``None`` or a dict of strings: its outputs, which later
stages read (``ctx.outputs["lint"]``; a container stage of conveyor.toml as
``CONVEYOR_LINT_LOG``).  The rules of the graph are the TOML stages': a
stage that does not need ``publish`` or ``manifest`` is a gate publish waits
for (unless ``gate=False``); one that does runs after them.

API: :func:`stage` (the decorator), :class:`StageContext` (what a stage
receives), :class:`Ran` (what ``ctx.run`` returns), :class:`Service` (a
service for ``ctx.run``), :class:`PythonStage` (what ``@stage`` returns).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.dsl.context import Ran, StageContext
from conveyor.dsl.declare import PythonStage, stage

if TYPE_CHECKING:
    from conveyor.engines.port import ServiceBinding as Service

__all__ = ["PythonStage", "Ran", "Service", "StageContext", "stage"]


def __getattr__(name: str) -> object:
    # Service is the engine port's ServiceBinding, imported when a pipeline names it: the
    # port's values are not loaded to describe a pipeline (conveyor graph, plan)
    if name == "Service":
        from conveyor.engines.port import ServiceBinding  # noqa: PLC0415 - see above

        return ServiceBinding
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
