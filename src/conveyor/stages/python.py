"""The stages of ``run.pipeline``: Python ``@stage`` functions as stage definitions.

A Python stage joins the pipeline like a ``[stages.<name>]`` table (its
``needs``, ``gate``, ``always``); one declared ``replaces=True`` takes the
place of the built-in of its name instead, keeping that built-in's needs and
what waits for it.  Its ``origin`` (``pipeline.py:12 lint``) names it in
errors, ``conveyor graph`` and ``plan``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

from conveyor.config.models import RESERVED_STAGES
from conveyor.dsl.declare import PythonStage
from conveyor.dsl.loader import load_pipeline
from conveyor.errors import ConfigError, StageOutputError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.secrets import Redactor
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import DeliveryFunction, StageDefinition

DEFAULT_TIMEOUT = 1800.0
"""A Python stage's timeout when it sets none: a TOML stage's default."""


def python_definitions(
    ctx: DeliveryContext, definitions: Sequence[StageDefinition]
) -> list[StageDefinition]:
    """``definitions`` with ``run.pipeline``'s stages: appended, or in a replaced built-in's place.

    Raises:
        ConfigError: the file does not load (see :func:`load_pipeline`), a
            stage takes a reserved name, is named like a built-in without
            ``replaces=True``, or replaces a built-in the pipeline does not have.
    """
    config = ctx.config
    if config.run.pipeline is None:
        return list(definitions)
    path = config.resolve(config.run.pipeline)
    if not path.is_file():
        raise ConfigError(
            config.root / "conveyor.toml",
            "run.pipeline",
            f"{str(config.run.pipeline)!r} is not a file ({path})",
            hint="name the Python file of your @stage functions, relative to conveyor.toml",
        )
    result = list(definitions)
    builtins = {d.name: index for index, d in enumerate(result) if d.origin == "built-in"}
    for declared in load_pipeline(path):
        location = location_of(ctx, declared)
        origin = f"{location} {declared.name}"
        where = f"{declared.file}:{declared.line}"
        if declared.name in builtins and declared.replaces:
            index = builtins[declared.name]
            result[index] = replaced(result[index], declared, origin, location)
            continue
        if declared.replaces:
            present = ", ".join(builtins) or "none"
            raise ConfigError(
                where,
                None,
                f"@stage {declared.name} says replaces=True, but this pipeline has no "
                f"built-in stage {declared.name!r} (its built-in stages: {present})",
                hint="use a built-in's name, enable that stage, or drop replaces=True",
            )
        if declared.name in RESERVED_STAGES:
            raise ConfigError(
                where,
                None,
                f"@stage {declared.name}: {declared.name!r} is a built-in stage's name",
                hint=(
                    "give your stage another name"
                    if declared.name == "report" or declared.name not in builtins
                    else f"say @stage(name={declared.name!r}, replaces=True) to replace the "
                    "built-in, or give your stage another name"
                ),
            )
        result.append(
            StageDefinition(
                declared.name,
                python_stage(declared, origin),
                needs=declared.needs,
                timeout=declared.timeout or DEFAULT_TIMEOUT,
                retries=declared.retries,
                always=declared.always,
                gate=declared.gate,
                description=f"{declared.description or 'Python stage'} ({location})",
                origin=origin,
                details={"defined in": origin},
                location=location,
            )
        )
    return result


def replaced(
    builtin: StageDefinition, declared: PythonStage, origin: str, location: str
) -> StageDefinition:
    """The built-in ``builtin`` run by ``declared``: its place, needs and options kept."""
    return replace(
        builtin,
        function=python_stage(declared, origin, builtin.function),
        needs=tuple(dict.fromkeys([*builtin.needs, *declared.needs])),
        timeout=declared.timeout or builtin.timeout,
        retries=declared.retries or builtin.retries,
        always=declared.always,
        description=f"{declared.description or builtin.description} ({location}, replaces "
        "the built-in)",
        origin=origin,
        details={**builtin.details, "replaced by": origin},
        location=location,
    )


def python_stage(
    declared: PythonStage, origin: str, builtin: DeliveryFunction | None = None
) -> DeliveryFunction:
    """The delivery function that runs ``declared`` with its :class:`StageContext`."""

    async def run(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
        from conveyor.dsl.context import StageContext  # noqa: PLC0415 - loads the container path

        context = StageContext(declared.name, ctx, inputs, builtin)
        returned = await declared.body(context)
        return checked_outputs(declared.name, origin, returned, ctx.redactor)

    run.__name__ = run.__qualname__ = declared.name
    return run


def checked_outputs(stage: str, origin: str, returned: object, redact: Redactor) -> dict[str, str]:
    """``returned`` as outputs: ``None`` is none; values masked by ``redact`` (a secret's).

    Raises:
        StageOutputError: it is not ``None`` or a mapping of strings to strings.
    """
    if returned is None:
        return {}
    if not isinstance(returned, Mapping):
        return _refuse(stage, origin, f"a {type(returned).__name__}, not a dict of strings")
    outputs: dict[str, str] = {}
    for key, value in returned.items():
        if not isinstance(key, str) or not key:
            _refuse(stage, origin, f"the key {key!r}; keys are non-empty strings")
        if not isinstance(value, str):
            _refuse(
                stage,
                origin,
                f"{key!r}: {type(value).__name__} {value!r:.40}; values are strings "
                f"(str({key!r}) ...)",
            )
        outputs[key] = redact(value)
    return outputs


def _refuse(stage: str, origin: str, problem: str) -> dict[str, str]:
    raise StageOutputError(stage, origin, problem)


def location_of(ctx: DeliveryContext, declared: PythonStage) -> str:
    """``pipeline.py:12``: the file relative to conveyor.toml when it is under it."""
    file = declared.file or ctx.config.resolve(ctx.config.run.pipeline or "pipeline.py")
    root = ctx.config.root.resolve()
    shown = os.path.relpath(file, root) if file.resolve().is_relative_to(root) else str(file)
    return f"{shown}:{declared.line}"
