"""A validation run (``conveyor run --validate``): what a pull or merge request runs.

A validation run publishes nothing and commits nothing: every publish stage
is skipped, and with it the manifest and whatever needs them.  What else runs
is the list given:

- ``gates`` (the CI wrappers' default): every stage publish waits for, the
  built-in gates and the user's own, so everything but publish and what
  follows it;
- stage names: those stages only, every other one skipped but the always-run
  ones (the report).  With ``[images]`` a kind names each image's stage of
  it (``build`` keeps ``build-api`` and ``build-web``).

The values may be repeated options or one list separated by spaces or
commas (``--validate "test build"``), so a CI input passes through as it is.
Both CI wrappers (the reusable GitHub workflow's ``validate-stages``, the
GitLab component's ``stages``) and the Dagger module's ``ci --validate``
hand their input to this one reader, and check it with
:func:`check_validation` before anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from conveyor.config.models import Config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ConfigError, UnknownStageError
from conveyor.pipeline.graph import Pipeline
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import (
    configured_stages,
    delivery_pipeline,
    expand_groups,
    publish_stages,
)

GATES = "gates"
"""Every stage publish waits for."""

OPTION = "--validate"

_SEPARATORS = re.compile(r"[\s,]+")


def validation_names(values: Sequence[str]) -> tuple[str, ...]:
    """The names of ``--validate`` values: each split on spaces and commas, in order, once.

    ``--validate`` given with nothing but blanks (an empty CI input) is
    ``gates``: asking for a validation run never makes a delivery.

    Raises:
        ConfigError: ``gates`` is given with stage names (it stands alone).
    """
    names = tuple(dict.fromkeys(n for value in values for n in _SEPARATORS.split(value) if n))
    if values and not names:
        return (GATES,)
    if GATES in names and len(names) > 1:
        raise ConfigError(
            None,
            OPTION,
            f"{GATES!r} stands alone, not with stage names ({' '.join(names)})",
            hint=f"{OPTION} {GATES} runs every stage publish waits for; or list the stages to run",
        )
    return names


def describe(names: Sequence[str]) -> str:
    """The line a run starts with: what this validation runs and what it skips."""
    if tuple(names) == (GATES,):
        return "validation: every stage publish waits for; skipped: publish and what needs it"
    return f"validation: {' '.join(names)}; every other stage is skipped, and publish always"


def validation_skips(
    ctx: DeliveryContext, pipeline: Pipeline, names: Sequence[str]
) -> dict[str, str]:
    """The stages a validation of ``names`` skips, each with its reason (none: no validation).

    Raises:
        UnknownStageError: a name is no stage the configuration names, nor a kind.
    """
    if not names:
        return {}
    present = set(pipeline.order)
    publishes = publish_stages(ctx)
    shown = " ".join(names)
    reason = f"a validation run ({OPTION} {shown}) publishes nothing"
    skips = dict.fromkeys((n for n in pipeline.order if n in publishes), reason)
    if tuple(names) == (GATES,):
        return skips
    known = configured_stages(ctx) | present
    for name in names:
        if name not in known:
            raise UnknownStageError(name, sorted(present))
    kept = set(expand_groups(ctx.config, names, present))
    for name in pipeline.order:
        if name not in kept and name not in skips and not pipeline[name].always:
            skips[name] = f"not in {OPTION} {shown}"
    return skips


def check_validation(
    config: Config, sha: str, names: Sequence[str]
) -> tuple[Pipeline, dict[str, str]]:
    """The stage graph, built without an engine, and what a validation of ``names`` skips.

    The check ``conveyor run`` (its preflight) and the Dagger module's ``ci``
    make before any stage, engine, run directory or credential is touched:
    a wrong graph, a ``run.pipeline`` that does not load or an unknown name
    stops them there.

    Raises:
        ConfigError: the stage graph is wrong, or ``run.pipeline`` does not load.
        UnknownStageError: a name is no stage the configuration names, nor a kind.
    """
    ctx = DeliveryContext(config, NoEngine(), sha, config.root / ".conveyor" / "plan")
    pipeline = delivery_pipeline(ctx)
    return pipeline, validation_skips(ctx, pipeline, names)
