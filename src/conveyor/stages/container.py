"""Running a stage's command in a container: the test stage and every custom stage.

One path for both: secrets masked, the output and the reports collected
(even when the command fails), JUnit counted, services started around the
command by the engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.atomic import write_atomically
from conveyor.config.models import CustomStageConfig, ServiceConfig
from conveyor.engines.port import CacheMount, RunSpec, ServiceBinding
from conveyor.errors import StageCommandError, TestsFailedError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.secrets import Redactor, Secret
from conveyor.stages.context import DeliveryContext, built_image
from conveyor.stages.junit import summarize


@dataclass(frozen=True)
class ContainerCommand:
    """What a container stage runs (``outputs`` and ``junit``: paths relative to ``workdir``)."""

    image: str
    command: Sequence[str]
    source: Path
    workdir: str = "/src"
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()
    caches: Mapping[str, str] = field(default_factory=dict)
    services: Sequence[ServiceBinding] = ()
    outputs: Sequence[str] = ()
    junit: str | None = None


async def run_in_container(
    ctx: DeliveryContext, stage: str, command: ContainerCommand, *, tests: bool = False
) -> Outputs:
    """Run ``command`` for ``stage``; its files land in the stage's artifact directory.

    Outputs ``exit_code``, ``log``, ``output.<path>`` for every collected
    file and, with a JUnit report, ``junit``, ``tests`` and ``failures``.

    Raises:
        TestsFailedError: ``tests`` and the command exited non-zero.
        StageCommandError: the command exited non-zero.
    """
    out = ctx.stage_dir(stage)
    secrets = tuple(Secret.from_env(name) for name in command.secrets)
    for secret in secrets:
        ctx.redactor.add(secret)
    reports = [command.junit] if command.junit else []
    collected = tuple(dict.fromkeys([*command.outputs, *reports]))
    spec = RunSpec(
        image=command.image,
        command=tuple(command.command),
        source=command.source,
        workdir=command.workdir,
        env=dict(command.env),
        secrets=secrets,
        caches=tuple(CacheMount(name, path) for name, path in command.caches.items()),
        services=tuple(command.services),
        outputs=collected,
        export_dir=out,
        ca_bundle=ctx.config.run.ca_bundle,
    )
    result = await ctx.engine.run(spec)
    # a command that prints a secret puts it in its reports too (failure messages)
    redact_files(result.exported.values(), ctx.redactor)
    output = ctx.redactor(result.stdout + result.stderr)
    log = out / "output.log"
    write_atomically(log, output)
    outputs: dict[str, str] = {"exit_code": str(result.exit_code), "log": str(log)}
    for name, path in result.exported.items():
        outputs[f"output.{name}"] = str(path)
    summary = ""
    junit = result.exported.get(command.junit) if command.junit else None
    if junit is not None and junit.is_file():
        counts = summarize(junit)
        summary = str(counts)
        outputs |= {
            "junit": str(junit),
            "tests": str(counts.tests),
            "failures": str(counts.failures + counts.errors),
        }
    if result.exit_code != 0:
        if tests:
            raise TestsFailedError(spec.command, result.exit_code, summary, output)
        raise StageCommandError(stage, spec.command, result.exit_code, summary, output)
    return outputs


def custom_command(
    ctx: DeliveryContext, name: str, options: CustomStageConfig, inputs: StageInputs
) -> ContainerCommand:
    """The container command of the custom stage ``name``."""
    return ContainerCommand(
        image=options.image,
        command=options.argv,
        source=ctx.config.resolve(options.source),
        workdir=options.workdir,
        env={**stage_environment(ctx, inputs), **options.env},
        secrets=tuple(options.secrets),
        caches=dict(options.caches),
        services=tuple(service_binding(ctx, s, inputs) for s in options.services),
        outputs=tuple(options.outputs),
        junit=options.junit,
    )


def service_binding(
    ctx: DeliveryContext, service: ServiceConfig, inputs: StageInputs
) -> ServiceBinding:
    """What the engine starts for ``service``: its image, or the image the pipeline built."""
    built = None
    if service.build is not None:
        spec = next(s for s in ctx.config.image_specs() if s.name == service.build)
        built = built_image(inputs[spec.stage("build")])
    return ServiceBinding(
        name=service.name,
        image=built.id if built is not None else service.image or "",
        port=service.port,
        env=dict(service.env),
        command=tuple(service.command),
        built=built,
    )


async def run_custom(ctx: DeliveryContext, inputs: StageInputs, *, name: str) -> Outputs:
    """The custom stage ``name`` of ``[stages.<name>]``."""
    options = ctx.config.stages.custom[name]
    return await run_in_container(ctx, name, custom_command(ctx, name, options, inputs))


def stage_environment(ctx: DeliveryContext, inputs: StageInputs) -> dict[str, str]:
    """What a custom stage's command is told: the commit, the image, finished stages' outputs.

    ``CONVEYOR_SHA``, ``CONVEYOR_SHORT_SHA``, ``CONVEYOR_IMAGE`` (the
    address publish pushes to) and, for every finished stage's output,
    ``CONVEYOR_<STAGE>_<KEY>`` (upper case, other characters as ``_``:
    ``CONVEYOR_PUBLISH_IMAGE_REF``).
    """
    env = {
        "CONVEYOR_SHA": ctx.sha,
        "CONVEYOR_SHORT_SHA": ctx.short_sha,
        "CONVEYOR_IMAGE": ctx.address,
    }
    for stage, outputs in inputs.items():
        for key, value in outputs.items():
            env[output_variable(stage, key)] = value
    return env


def output_variable(stage: str, key: str) -> str:
    """``CONVEYOR_PUBLISH_IMAGE_REF`` for the output ``image.ref`` of ``publish``."""
    return "CONVEYOR_" + re.sub(r"[^A-Za-z0-9]", "_", f"{stage}_{key}").upper()


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
