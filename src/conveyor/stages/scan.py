"""The ``scan`` stage: Trivy on the image tarball, gated on severity."""

from __future__ import annotations

from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.scan.trivy import scan_tarball
from conveyor.stages.context import DeliveryContext, built_image


async def run_scan(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Export the built image, scan it, write JSON and SARIF, apply the gate.

    Raises:
        ScanGateError: findings at a blocking severity that no valid ignore entry covers.
    """
    options = ctx.config.stages.scan
    out = ctx.stage_dir("scan")
    tarball = await ctx.engine.export_tarball(built_image(inputs["build"]), out / "image.tar")
    outcome = await scan_tarball(tarball, out, options, executable=options.trivy, today=ctx.today)
    tarball.unlink(missing_ok=True)  # large, and the published image is the artifact
    gate = outcome.gate
    outputs = {
        "report": str(outcome.json_path),
        "sarif": str(outcome.sarif_path),
        "blocking": str(len(gate.blocking)),
        "ignored": str(len(gate.ignored)),
        **{f"count.{severity.lower()}": str(n) for severity, n in gate.counts.items()},
    }
    (out / "summary.txt").write_text(outcome.summary())
    error = gate.error(built_image(inputs["build"]).local_ref)
    if error is not None:
        raise error
    return outputs
