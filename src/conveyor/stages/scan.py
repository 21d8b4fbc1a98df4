"""The ``scan`` stage: Trivy on the image tarball, gated on severity.

Trivy runs where ``stages.scan.image`` says: unset, the local ``trivy``
executable (``stages.scan.trivy``); set, that image through the engine, its
database in the cache volume ``stages.scan.cache`` (the Dagger module's
runtime and runners without Trivy need this).  Either way the same command
line, gate and reports.
"""

from __future__ import annotations

import anyio

from conveyor.atomic import write_atomically
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.scan.trivy import TARBALL_NAME, ScanOutcome, scan_in_container, scan_tarball
from conveyor.stages.context import DeliveryContext, built_image


async def run_scan(
    ctx: DeliveryContext, inputs: StageInputs, *, image: str | None = None
) -> Outputs:
    """Export the built image, scan it, write JSON and SARIF, apply the gate.

    ``image`` names an ``[images.<name>]`` table (stage ``scan-<name>``, its
    reports under ``artifacts/scan-<name>/``); ``None``: the ``[app]`` one.

    Raises:
        ScanGateError: findings at a blocking severity that no valid ignore entry covers.
        CommandFailedError: Trivy itself failed (exit code and its stderr tail).
        ToolMissingError: no image is configured and the local executable is missing.
    """
    options = ctx.config.stages.scan
    spec = ctx.config.image_spec(image)
    out = ctx.stage_dir(spec.stage("scan"))
    built = built_image(inputs[spec.stage("build")])
    tarball = await ctx.engine.export_tarball(built, out / TARBALL_NAME)
    try:
        outcome: ScanOutcome
        if options.image is None:
            outcome = await scan_tarball(
                tarball, out, options, executable=options.trivy, today=ctx.today
            )
        else:
            outcome = await scan_in_container(
                ctx.engine,
                tarball,
                options,
                image=options.image,
                ca_bundle=ctx.config.run.ca_bundle,
                today=ctx.today,
            )
    finally:
        # large, and the published image is the artifact; freeing its blocks takes tens
        # of milliseconds, in a thread: the loop serves the stages running beside it
        with anyio.CancelScope(shield=True):
            await anyio.Path(tarball).unlink(missing_ok=True)
    gate = outcome.gate
    outputs = {
        "report": str(outcome.json_path),
        "sarif": str(outcome.sarif_path),
        "blocking": str(len(gate.blocking)),
        "ignored": str(len(gate.ignored)),
        **{f"count.{severity.lower()}": str(n) for severity, n in gate.counts.items()},
    }
    write_atomically(out / "summary.txt", outcome.summary())
    error = gate.error(built.local_ref)
    if error is not None:
        raise error
    return outputs
