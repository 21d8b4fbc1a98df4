"""The hello pipeline's Python stages (conveyor.toml names this file in run.pipeline).

Stages here join the DAG of conveyor.toml by ``needs``; they read the outputs
of the stages before them and hand their own to the stages after.
"""

from __future__ import annotations

from conveyor.dsl import StageContext, stage


@stage(needs=["publish", "test", "integration"])
async def release_notes(ctx: StageContext) -> dict[str, str]:
    """write the release notes of the published image"""
    published = ctx.outputs["publish"]
    tests = ctx.outputs["test"]
    checks = ctx.outputs["integration"]
    notes = ctx.artifacts / "release.md"
    notes.write_text(
        f"# hello {ctx.sha[:12]}\n\n"
        f"- image: `{published['image.ref']}`\n"
        f"- unit tests: {tests.get('tests', '?')} run, {tests.get('failures', '?')} failed\n"
        f"- integration checks against the built image: {checks.get('tests', '?')} run\n",
        encoding="utf-8",
    )
    return {"notes": str(notes), "image": published["image.ref"]}
