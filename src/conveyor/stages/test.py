"""The ``test`` stage: the unit tests, in the configured image, source mounted."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from conveyor.atomic import write_atomically
from conveyor.engines.port import CacheMount, RunSpec
from conveyor.errors import ConfigError, TestsFailedError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.secrets import Redactor, Secret
from conveyor.stages.context import DeliveryContext
from conveyor.stages.junit import summarize


async def run_test(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Run the test command; collect the JUnit report even when tests fail.

    Raises:
        TestsFailedError: the command exited non-zero.
    """
    options = ctx.config.stages.test
    if options is None:
        raise ConfigError(ctx.config.root / "conveyor.toml", "stages.test", "is not configured")
    out = ctx.stage_dir("test")
    test_secrets = tuple(Secret.from_env(name) for name in options.secrets)
    for secret in test_secrets:
        ctx.redactor.add(secret)
    spec = RunSpec(
        image=options.image,
        command=tuple(options.command),
        source=ctx.config.resolve(ctx.config.app.source),
        env=dict(options.env),
        secrets=test_secrets,
        caches=tuple(CacheMount(name, path) for name, path in options.caches.items()),
        outputs=(options.junit,) if options.junit else (),
        export_dir=out,
        ca_bundle=ctx.config.run.ca_bundle,
    )
    result = await ctx.engine.run(spec)
    # A test that prints a secret puts it in its JUnit report too (failure messages).
    redact_files(result.exported.values(), ctx.redactor)
    write_atomically(out / "output.log", ctx.redactor(result.stdout + result.stderr))
    outputs: dict[str, str] = {"exit_code": str(result.exit_code)}
    summary = ""
    junit = result.exported.get(options.junit) if options.junit else None
    if junit is not None and junit.is_file():
        counts = summarize(junit)
        summary = str(counts)
        outputs |= {
            "junit": str(junit),
            "tests": str(counts.tests),
            "failures": str(counts.failures + counts.errors),
        }
    if result.exit_code != 0:
        raise TestsFailedError(
            spec.command, result.exit_code, summary, ctx.redactor(result.stdout + result.stderr)
        )
    return outputs


def redact_files(paths: Iterable[Path], redactor: Redactor) -> None:
    """Mask secret values in the exported text files (and files of exported directories)."""
    for path in paths:
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if not file.is_file() or file.is_symlink():
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary: not a report a secret is printed into
            masked = redactor(text)
            if masked != text:
                write_atomically(file, masked)  # never a half-masked report
