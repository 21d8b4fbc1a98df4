"""The delivery DAG: which stage needs which, built from the configuration.

::

    test ─────────────────────┐
    build ─┬─ scan ───────────┼─ publish ─ manifest ─┬─ verify   (when smoke.<env> is set)
           └─ smoke ──────────┘                      └─ policy
    report (always: writes summary.json whatever happened)

With ``[images.<name>]`` each image has its own stages (``build-api``,
``scan-api``, ``smoke-api``, ``publish-api`` ...); every publish waits for
every image's build, scan and smoke, and ``manifest`` for every publish (it
pins them all in one commit).  ``build``, ``scan``, ``smoke`` and
``publish`` are then group names in ``needs``, ``--only`` and ``--skip``.

The user's own stages (``[stages.<name>]``) join it by their ``needs``:
one that does not depend on publish or manifest is a gate, publish waits
for it (``gate = false`` says otherwise); one that needs publish or manifest
runs after (an end-to-end test against staging, a notification).  Every
publish stage waits for every gate.  Built-in
stages take ``needs`` too.  Nothing is pushed before every gate passed;
nothing is committed before the push.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.config.models import Config, ImageSpec, StageOptions
from conveyor.errors import ConfigError, CycleError
from conveyor.pipeline.graph import Outputs, Pipeline, Selection, Stage, StageInputs
from conveyor.stages.context import DeliveryContext

if TYPE_CHECKING:
    # anyio and the scheduler are imported by what runs the pipeline (deliver): describing
    # it (conveyor graph, plan) builds the DAG only
    from conveyor.pipeline.hooks import Hooks
    from conveyor.pipeline.result import PipelineResult
    from conveyor.pipeline.scheduler import Interruption

DeliveryFunction = Callable[..., Awaitable[Outputs]]
"""``(ctx, inputs)``, and ``image=<name>`` for the per-image stages of ``[images]``."""

STAGE_MODULE = "stage_module"
"""The attribute of a stage function naming the module it imports when it first runs.

:func:`deliver` imports those of the later stages while the first ones wait
on their tools (:func:`import_ahead`).
"""


def stage_function(module: str, name: str) -> DeliveryFunction:
    """The stage function ``module.name``, imported when the stage first runs.

    Describing the pipeline (``conveyor graph``, ``plan``) then loads no
    stage's dependencies (httpx, ruamel.yaml, the Trivy adapter ...); a run
    imports them ahead (:func:`import_ahead`).
    """

    async def run(ctx: DeliveryContext, inputs: StageInputs, **options: Any) -> Outputs:
        function: DeliveryFunction = getattr(importlib.import_module(module), name)
        return await function(ctx, inputs, **options)

    run.__name__ = run.__qualname__ = name
    setattr(run, STAGE_MODULE, module)
    return run


run_test = stage_function("conveyor.stages.test", "run_test")
run_custom = stage_function("conveyor.stages.container", "run_custom")
run_build = stage_function("conveyor.stages.build", "run_build")
run_scan = stage_function("conveyor.stages.scan", "run_scan")
run_smoke = stage_function("conveyor.stages.smoke", "run_smoke")
run_verify = stage_function("conveyor.stages.smoke", "run_verify")
run_publish = stage_function("conveyor.stages.publish", "run_publish")
run_manifest = stage_function("conveyor.stages.manifest", "run_manifest")
run_policy = stage_function("conveyor.stages.manifest", "run_policy")


def custom_stage(name: str) -> DeliveryFunction:
    """The container stage ``[stages.<name>]``, its module imported when it first runs."""
    return functools.partial(run_custom, name=name)


def stage_modules(pipeline: Pipeline, stages: Iterable[str]) -> list[str]:
    """The modules the functions of ``stages`` import when they first run, in order, once each.

    Stage functions without one (``report``, a Python stage's) are left out.
    """
    modules: dict[str, None] = {}
    for name in stages:
        function: object = pipeline[name].run
        while isinstance(function, functools.partial):
            function = function.func
        module = getattr(function, STAGE_MODULE, None)
        if isinstance(module, str):
            modules[module] = None
    return list(modules)


IMPORT_DELAY = 0.3
"""Seconds :func:`import_ahead` leaves the first stages before it imports anything.

An import holds the event loop: a first stage between two of its own steps
(a ``git show``, a file read in a worker thread, then its ``podman build``)
would wait for every import in turn before its tool starts, and the build
is on the run's critical path.  Once the first stages' tools run, the loop
is free; the later stages start after the first ones end, seconds later.
"""


async def import_ahead(modules: Sequence[str], *, delay: float = IMPORT_DELAY) -> None:
    """Import ``modules`` in the event loop, after ``delay`` seconds, one per turn of it.

    The scheduler runs this once the first stages have started: their tools
    then run while the CPU would be idle, and a later stage does not count
    the import (httpx, ruamel.yaml ...) as its own time.  Not in a thread:
    two threads importing modules that import each other can deadlock.  A
    module that fails to import is left to the stage that needs it, which
    reports the error when it runs.  A run that ends within ``delay``
    imports nothing (the scheduler cancels this when the run ends).
    """
    import anyio  # noqa: PLC0415 - see TYPE_CHECKING above
    import anyio.lowlevel  # noqa: PLC0415 - see TYPE_CHECKING above

    await anyio.sleep(delay)  # the first stages reach their tools first
    for module in modules:
        await anyio.lowlevel.checkpoint()  # the stages started or woken reach their next wait
        if module in sys.modules:
            continue
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001, S112 - the stage importing it reports the error
            continue


BUILTIN_NEEDS: dict[str, tuple[str, ...]] = {
    "test": (),
    "build": (),
    "scan": ("build",),
    "smoke": ("build",),
    "publish": ("test", "build", "scan", "smoke"),
    "manifest": ("publish",),
    "policy": ("manifest",),
    "verify": ("manifest",),
}
"""Each built-in stage's own dependencies (those that are in the pipeline)."""

AFTER_DELIVERY = ("publish", "manifest")
"""A stage depending on one of these (or a ``publish-<image>``) runs after delivery."""

IMAGE_STAGES = ("build", "scan", "smoke", "publish")
"""The stages each ``[images.<name>]`` has of its own: ``build-<name>`` ...

With ``[images]`` these names are groups: ``needs = ["publish"]`` means
every ``publish-<name>``.
"""


def publish_stages(ctx: DeliveryContext) -> frozenset[str]:
    """The publish stages: ``publish``, or ``publish-<image>`` for each ``[images.<name>]``.

    Named by the images, not by the prefix: a stage of the user's called
    ``publish-docs`` is not one.
    """
    return frozenset(spec.stage("publish") for spec in ctx.config.image_specs())


@dataclass(frozen=True)
class StageDefinition:
    """A stage before wiring: its own needs, and what decides whether it gates publish.

    ``gate``: publish waits for it unless it depends on publish or manifest.
    ``origin`` names where it was defined, for errors and ``conveyor graph``;
    ``location`` is the ``file:line`` a Python stage's errors name
    (``None``: conveyor.toml's).
    ``image``: the ``[images.<name>]`` a per-image stage builds, scans, probes
    or publishes (``""`` otherwise), drawn as a group.
    """

    name: str
    function: DeliveryFunction
    needs: tuple[str, ...] = ()
    timeout: float | None = None
    retries: int = 0
    always: bool = False
    gate: bool = False
    description: str = ""
    origin: str = "built-in"
    details: Mapping[str, str] = field(default_factory=dict)
    skip_reason: str | None = None
    services: tuple[str, ...] = ()
    location: str | None = None
    image: str = ""


def delivery_pipeline(ctx: DeliveryContext) -> Pipeline:
    """The stages the configuration enables, wired in delivery order.

    A disabled stage (``enabled = false``) is left out and its dependents do
    not wait for it: disabling ``scan`` publishes unscanned images, which the
    configuration then says openly.  Custom stages (``[stages.<name>]``) are
    wired by their ``needs``; each one that does not depend on publish or
    manifest is a gate publish waits for (unless ``gate = false``).  The
    ``@stage`` functions of ``run.pipeline`` join them the same way, or take
    the place of the built-in they replace (:mod:`conveyor.stages.python`).

    Raises:
        ConfigError: a ``needs`` names no stage, or the stages form a cycle
            (the message shows the path), or ``run.pipeline`` does not load;
            nothing has run.
    """
    definitions = [*builtin_definitions(ctx), *custom_definitions(ctx)]
    if ctx.config.run.pipeline is None:  # conveyor graph loads no Python stage machinery
        return wire(ctx, definitions)
    from conveyor.stages.python import python_definitions  # noqa: PLC0415 - it imports this

    return wire(ctx, python_definitions(ctx, definitions))


def builtin_definitions(ctx: DeliveryContext) -> list[StageDefinition]:
    """The built-in stages the configuration enables, with their own and the user's needs.

    The ``[app]`` shorthand has one image and the stages ``build``, ``scan``,
    ``smoke``, ``publish``; with ``[images]`` each image has its own
    (``build-<name>`` ...).  Every publish waits for every image's build,
    scan and smoke, so a failing gate of one image pushes none; ``manifest``
    waits for every publish and pins them all in one commit.
    """
    config = ctx.config
    stages = config.stages
    env = stages.manifest.environment
    specs = config.image_specs()
    wanted: list[tuple[str, DeliveryFunction, StageOptions, str, ImageSpec | None]] = []
    if stages.test is not None and stages.test.enabled:
        wanted.append(("test", run_test, stages.test, "unit tests in the test image", None))
    for spec in specs:
        bind = _for_image(spec)
        of = "" if spec.suffix is None else f" {spec.name}"
        wanted.append(
            (
                spec.stage("build"),
                bind(run_build),
                stages.build,
                f"build the image{of} from {'the Dockerfile' if not of else spec.dockerfile}",
                spec,
            )
        )
        if stages.scan.enabled:
            scan = f"Trivy scan of the image{of}, severity gate"
            wanted.append((spec.stage("scan"), bind(run_scan), stages.scan, scan, spec))
        if stages.smoke.enabled and spec.smoke:
            smoke = f"run the image{of}, probe its version"
            wanted.append((spec.stage("smoke"), bind(run_smoke), stages.smoke, smoke, spec))
    for spec in specs:
        address = config.image_address(spec, "<sha>")
        wanted.append(
            (
                spec.stage("publish"),
                _for_image(spec)(run_publish),
                stages.publish,
                f"push {address}, never overwrite a tag",
                spec,
            )
        )
    if config.gitops is not None and stages.manifest.enabled:
        manifest = stages.manifest
        pin = f"pin the digest in {env}'s manifests, commit, push"
        if config.images:
            pin = f"pin the {len(specs)} digests in {env}'s manifests, one commit, push"
        wanted.append(("manifest", run_manifest, manifest, pin, None))
        if config.gitops.environments[env].kustomize:  # policy renders the kustomization
            check = f"render {env} and check every image against the policy"
            wanted.append(("policy", run_policy, manifest, check, None))
        if env in config.smoke:
            probe = f"probe {config.smoke[env].url} until it serves the new version"
            wanted.append(("verify", run_verify, stages.smoke, probe, None))
    present = [name for name, *_ in wanted]
    # an image whose paths did not change is neither built nor pinned again
    unchanged = {
        spec.name: reason
        for spec in specs
        if spec.suffix is not None and (reason := _not_delivered(ctx, spec))
    }
    nothing = None
    if len(unchanged) == len(specs):
        nothing = (
            f"no image changed since {ctx.changes.base}"
            if ctx.images is None
            else "this job delivers no image"
        )
    definitions = []
    for name, function, options, description, image in wanted:
        kind = name if image is None else name.removesuffix(f"-{image.suffix}")
        own = _own_needs(kind, image, specs, present)
        # policy and verify share the manifest's and smoke's options, not their needs
        extra = tuple(options.needs) if kind not in {"policy", "verify"} else ()
        definitions.append(
            StageDefinition(
                name,
                function,
                needs=tuple(dict.fromkeys([*own, *extra])),
                timeout=options.timeout,
                retries=options.retries,
                description=description,
                details=plan_details(ctx, kind, image),
                skip_reason=unchanged.get(image.name)
                if image is not None
                else _after(kind, nothing),
                image=image.name if image is not None and image.suffix is not None else "",
            )
        )
    return definitions


def _not_delivered(ctx: DeliveryContext, spec: ImageSpec) -> str | None:
    """Why this run does not deliver the image of ``spec`` (``None``: it does)."""
    if ctx.images is not None and spec.name not in ctx.images:
        return f"another job delivers it (this one: --image {', '.join(sorted(ctx.images))})"
    return ctx.changes.skip_reason(spec.paths)


def delivered_images(ctx: DeliveryContext) -> list[str]:
    """The images this run would deliver: selected by ``--image`` and changed."""
    return [spec.name for spec in ctx.config.image_specs() if _not_delivered(ctx, spec) is None]


def _after(kind: str, nothing: str | None) -> str | None:
    """Why the delivery stages after publish do not run: no image changed (or ``None``)."""
    return nothing if kind in {"manifest", "policy", "verify"} else None


def _for_image(spec: ImageSpec) -> Callable[[DeliveryFunction], DeliveryFunction]:
    """Binds a per-image stage function to ``spec`` (nothing to bind for the shorthand)."""

    def bind(function: DeliveryFunction) -> DeliveryFunction:
        if spec.suffix is None:
            return function
        return functools.partial(function, image=spec.name)

    return bind


def _own_needs(
    kind: str, spec: ImageSpec | None, specs: Sequence[ImageSpec], present: Sequence[str]
) -> tuple[str, ...]:
    """A built-in stage's own dependencies among the ``present`` stages."""
    if spec is not None and kind in {"scan", "smoke"}:
        needs = [spec.stage("build")]
    elif kind == "publish":
        # every image's gates: a run pushes no image until all of them passed
        needs = ["test", *(s.stage(k) for k in ("build", "scan", "smoke") for s in specs)]
    elif kind == "manifest":
        needs = [s.stage("publish") for s in specs]
    else:
        needs = list(BUILTIN_NEEDS.get(kind, ()))
    return tuple(n for n in needs if n in present)


def custom_definitions(ctx: DeliveryContext) -> list[StageDefinition]:
    """The enabled ``[stages.<name>]`` tables of the user, each a container stage."""
    definitions = []
    for name, options in ctx.config.stages.custom.items():
        if not options.enabled:
            continue
        shown = options.script if options.script is not None else " ".join(options.argv)
        details = {"image": options.image, "command": shown}
        if options.services:
            details["services"] = ", ".join(
                f"{s.name} ({s.shown}, port {s.port})" for s in options.services
            )
        builds = tuple(
            build_stage(ctx, name, index, s.build)
            for index, s in enumerate(options.services)
            if s.build is not None
        )
        if options.outputs:
            details["outputs"] = ", ".join(options.outputs)
        if options.paths:
            details["paths"] = ", ".join(options.paths)
        definitions.append(
            StageDefinition(
                name,
                custom_stage(name),
                needs=tuple(dict.fromkeys([*options.needs, *builds])),
                timeout=options.timeout,
                retries=options.retries,
                always=options.always,
                gate=options.gate,
                description=options.description or f"{shown[:60]} in {options.image}",
                origin=f"stages.{name}",
                details=details,
                skip_reason=ctx.changes.skip_reason(options.paths),
                services=tuple(f"{s.name}: {s.shown}" for s in options.services),
            )
        )
    return definitions


def build_stage(ctx: DeliveryContext, stage: str, index: int, image: str) -> str:
    """The build stage of ``image``, which a service of ``stage`` runs.

    Raises:
        ConfigError: no image of this pipeline has that name.
    """
    specs = {spec.name: spec for spec in ctx.config.image_specs()}
    if image not in specs:
        raise ConfigError(
            ctx.config.root / "conveyor.toml",
            f"stages.{stage}.services[{index}].build",
            f"{image!r} is not an image of this pipeline (images: {', '.join(specs)})",
            hint="name the app (app.name) or one of [images]",
        )
    return specs[image].stage("build")


def wire(ctx: DeliveryContext, definitions: Sequence[StageDefinition]) -> Pipeline:
    """The pipeline of ``definitions``: needs on disabled stages dropped, gates before publish.

    Raises:
        ConfigError: a duplicate name, an unknown ``needs`` or a cycle.
    """
    path = ctx.config.root / "conveyor.toml"
    names = [d.name for d in definitions]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        origins = " and ".join(d.origin for d in definitions if d.name == twice)
        raise ConfigError(
            path, f"stages.{twice}", f"is defined twice ({origins})", hint="rename one of them"
        )
    present = set(names)
    disabled = configured_stages(ctx) - present
    definitions = [
        replace(d, needs=expand_groups(ctx.config, d.needs, present)) if ctx.config.images else d
        for d in definitions
    ]
    for definition in definitions:
        for need in definition.needs:
            if need not in present and need not in disabled:
                raise ConfigError(
                    ctx.config.root / definition.location if definition.location else path,
                    f"{'' if definition.location else 'stages.'}{definition.name}.needs",
                    f"{need!r} is not a stage",
                    hint=f"the stages are {', '.join(sorted(present))}",
                )
    # a need on a built-in left out (manifest without [gitops], scan disabled) means
    # what that built-in waits for: e2e after manifest still runs after publish
    definitions = [
        replace(
            d,
            needs=tuple(
                dict.fromkeys(n for need in d.needs for n in _in_place_of(ctx, need, present))
            ),
        )
        for d in definitions
    ]
    # a stage that will not run (nothing changed under its paths) holds nobody back
    unchanged = {d.name for d in definitions if d.skip_reason is not None}
    trimmed = [
        replace(d, needs=tuple(dict.fromkeys(n for n in d.needs if n not in unchanged)))
        for d in definitions
    ]
    first = _pipeline(ctx, trimmed, path)
    publishes = publish_stages(ctx) & present
    after = first.downstream(n for n in present if n in AFTER_DELIVERY or n in publishes)
    gates = tuple(
        d.name for d in trimmed if d.gate and d.name not in after and d.name not in unchanged
    )
    # every gate blocks every publish: no image is pushed before all of them passed
    wired = [
        replace(d, needs=tuple(dict.fromkeys([*d.needs, *gates]))) if d.name in publishes else d
        for d in trimmed
    ]
    pipeline = _pipeline(ctx, wired, path)
    ordered = pipeline.order
    return Pipeline(
        [
            *(pipeline[name] for name in ordered),
            Stage(
                "report",
                functools.partial(write_summary, ctx, stages=ordered),
                needs=ordered,
                always=True,
                description="write summary.json (always)",
            ),
        ]
    )


def _pipeline(ctx: DeliveryContext, definitions: Sequence[StageDefinition], path: Path) -> Pipeline:
    try:
        return Pipeline(
            Stage(
                d.name,
                functools.partial(d.function, ctx),
                needs=d.needs,
                timeout=d.timeout,
                retries=d.retries,
                always=d.always,
                description=d.description,
                details=d.details,
                skip_reason=d.skip_reason,
                services=d.services,
                group=d.image,
            )
            for d in definitions
        )
    except CycleError as error:
        located = {d.name: d.location for d in definitions if d.location}
        cycle = [f"{n} ({located[n]})" if n in located else n for n in error.cycle]
        raise ConfigError(
            path,
            "stages",
            f"the stages' needs form a cycle: {' -> '.join(cycle)}",
            hint="remove one of these needs"
            + (
                " (a stage publish waits for cannot need publish)"
                if "publish" in error.cycle
                else ""
            ),
        ) from None


def _in_place_of(ctx: DeliveryContext, need: str, present: set[str]) -> tuple[str, ...]:
    """The present stages a need on ``need`` stands for: itself, or what a left-out
    built-in would have needed (recursively); a left-out stage of the user's: none."""
    if need in present:
        return (need,)
    if need not in BUILTIN_NEEDS:
        return ()
    own = BUILTIN_NEEDS[need]
    if ctx.config.images:
        own = expand_groups(ctx.config, own, present)
    return tuple(n for o in own for n in _in_place_of(ctx, o, present))


def configured_stages(ctx: DeliveryContext) -> set[str]:
    """Every stage the configuration names, enabled or not."""
    images = {s.stage(k) for s in ctx.config.image_specs() for k in IMAGE_STAGES}
    return {*BUILTIN_NEEDS, *images, *ctx.config.stages.custom}


def expand_groups(config: Config, names: Sequence[str], present: Set[str]) -> tuple[str, ...]:
    """``names`` with each group (``build``, ``scan``, ``smoke``, ``publish``) made its members.

    With ``[images]``, ``publish`` means every ``publish-<image>`` there is
    (none, when the group's stages are all disabled); other names stay.  For
    ``needs``, and for ``--only``/``--skip`` (``--skip smoke`` skips every
    image's smoke stage).
    """
    if not config.images:
        return tuple(names)
    expanded: list[str] = []
    for name in names:
        if name in IMAGE_STAGES and name not in present:
            expanded += [
                member for spec in config.image_specs() if (member := spec.stage(name)) in present
            ]
        else:
            expanded.append(name)
    return tuple(dict.fromkeys(expanded))


def select_stages(
    config: Config,
    pipeline: Pipeline,
    only: Sequence[str],
    skip: Sequence[str],
    reasons: Mapping[str, str],
) -> tuple[tuple[str, ...], tuple[str, ...], Selection]:
    """``--only`` and ``--skip`` with their groups expanded, and what they select.

    The one selection of a run, its plan and its preflight.

    Raises:
        UnknownStageError: a name is no stage.
    """
    present = set(pipeline.order)
    only = expand_groups(config, only, present)
    skip = expand_groups(config, skip, present)
    return only, skip, pipeline.select(only, skip, reasons)


async def write_summary(
    ctx: DeliveryContext, inputs: StageInputs, *, stages: Sequence[str] = ()
) -> Outputs:
    """Write ``summary.json``: every stage's status, reason, duration, attempts and outputs.

    Beside it ``stages.junit.xml`` shows the same stages as a JUnit report
    (one test case per stage) for CI test views.

    The statuses come from ``ctx.journal`` (the runner passes it among the
    run's hooks); a stage the journal did not see is ``unknown``.  ``ok`` is
    true when no stage failed, was cancelled or is unknown, so a CI job can
    fail on it.  Layout::

        {"sha": ..., "run_id": ..., "ok": true|false,
         "stages": [{"name", "status", "reason", "duration", "attempts"}, ...],
         "outputs": {stage: {key: value}},
         "trace_url": ...}

    ``trace_url`` is there when the engine has a trace of the run of its own
    (Dagger Cloud, :class:`conveyor.engines.port.TraceLinked`); the stage's
    ``run.trace_url`` output puts it on the run span too.

    The file is replaced in one step (never half-written); when it cannot be
    written the stage still succeeds and its ``warning`` output says why.
    """
    recorded = ctx.journal.results
    rows: list[dict[str, Any]] = []
    for name in stages or tuple(recorded):
        result = recorded.get(name)
        if result is None:
            rows.append(
                {
                    "name": name,
                    "status": "unknown",
                    "reason": "not recorded: the run's hooks did not include the journal",
                    "duration": 0.0,
                    "attempts": 0,
                }
            )
            continue
        rows.append(
            {
                "name": name,
                "status": result.status.value,
                "reason": ctx.redactor(result.reason),
                "duration": round(result.duration, 3),
                "attempts": result.attempts,
            }
        )
    from conveyor.pipeline.result import Status  # noqa: PLC0415 - graph and plan run no stage

    # as PipelineResult.ok: a stage skipped for a failed dependency implies a failure
    ok = all(row["status"] in {Status.SUCCESS.value, Status.SKIPPED.value} for row in rows)
    summary: dict[str, Any] = {
        "sha": ctx.sha,
        "run_id": ctx.journal.run_id,
        "ok": ok,
        "stages": rows,
        "outputs": {name: dict(outputs) for name, outputs in inputs.items()},
    }
    # graph and plan write no report
    from conveyor.atomic import write_atomically  # noqa: PLC0415
    from conveyor.engines.port import TraceLinked  # noqa: PLC0415
    from conveyor.stages import stage_report  # noqa: PLC0415
    from conveyor.telemetry import trace_link  # noqa: PLC0415

    linked = {}
    if isinstance(ctx.engine, TraceLinked):
        url = trace_link.shown_trace_url(await ctx.engine.trace_url(), ctx.redactor)
        if url is not None:
            summary[trace_link.SUMMARY_KEY] = url
            linked[trace_link.RUN_OUTPUT] = url

    path = ctx.artifacts / "summary.json"
    report = stage_report.stages_junit(rows, app=ctx.config.app.name, run_id=ctx.journal.run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
        write_atomically(ctx.artifacts / stage_report.FILE_NAME, report)
    except OSError as error:
        # bookkeeping, not delivery: what was pushed and committed stays the run's result
        return {"ok": str(ok).lower(), "warning": f"{path}: {error.strerror or error}", **linked}
    return {"summary": str(path), "ok": str(ok).lower(), **linked}


async def deliver(
    ctx: DeliveryContext,
    *,
    hooks: Sequence[Hooks] = (),
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    capacity: int | None = None,
    on_failure: str | None = None,
    run_id: str | None = None,
    interruption: Interruption | None = None,
    validate: Sequence[str] = (),
) -> tuple[Pipeline, PipelineResult]:
    """Run the delivery pipeline of ``ctx``: the one way the CLI and the Dagger module run it.

    ``hooks`` watch the run (tracing, display); the context's journal is
    always among them, so the report stage sees every stage's result.
    ``interruption`` cancels the run (the CLI's signal handling).
    ``validate`` makes it a validation run (:mod:`conveyor.stages.validation`):
    the names of ``--validate``, nothing published.
    """
    from conveyor.pipeline.hooks import HookGroup  # noqa: PLC0415 - see TYPE_CHECKING above
    from conveyor.pipeline.scheduler import run_pipeline  # noqa: PLC0415
    from conveyor.stages.validation import validation_skips  # noqa: PLC0415 - it imports this

    config = ctx.config
    pipeline = delivery_pipeline(ctx)
    reasons = validation_skips(ctx, pipeline, validate)
    policy = on_failure or config.run.on_failure
    if policy not in {"cancel", "finish"}:  # the CLI checks its option; this is the API's guard
        raise ConfigError(None, "on_failure", f"{policy!r} is neither 'finish' nor 'cancel'")
    only, skip, selection = select_stages(config, pipeline, only, skip, reasons)
    selected = selection.run
    later = stage_modules(pipeline, (name for name in pipeline.order if name in selected))
    result = await run_pipeline(
        pipeline,
        meanwhile=functools.partial(import_ahead, later),
        capacity=capacity or config.run.capacity,
        on_failure="cancel" if policy == "cancel" else "finish",
        hooks=HookGroup([*hooks, ctx.journal]),
        only=only,
        skip=skip,
        skip_reasons=reasons,
        run_id=run_id,
        interruption=interruption,
        attributes={
            "conveyor.app": config.app.name,
            "conveyor.source.sha": ctx.sha,
            "conveyor.engine": ctx.engine.name,
        },
    )
    return pipeline, result


def plan_details(  # noqa: PLR0911 - one return per stage
    ctx: DeliveryContext, stage: str, image: ImageSpec | None = None
) -> dict[str, str]:
    """What ``stage`` would do, with every reference resolved (for ``conveyor plan``).

    ``stage`` is the kind (``build``, ``publish`` ...); ``image`` the image
    of a per-image stage (the ``[app]`` one when ``None``).
    """
    config = ctx.config
    app = config.app
    spec = image or config.image_spec(None)
    if stage == "test" and config.stages.test is not None:
        test = config.stages.test
        return {
            "image": test.image,
            "command": " ".join(test.command),
            "source": str(config.resolve(app.source)),
            "junit": test.junit or "-",
        }
    if stage == "build":
        args = {**spec.build_args, "GIT_SHA": ctx.sha}
        shown = {
            "context": str(config.resolve(spec.context)),
            "dockerfile": spec.dockerfile,
            "build args": " ".join(f"{k}={v}" for k, v in sorted(args.items())),
            "platforms": ",".join(spec.platforms) or "engine default",
        }
        if spec.target:
            shown["target"] = spec.target
        if spec.paths:
            shown["paths"] = ", ".join(spec.paths)
        return shown
    if stage == "scan":
        scan = config.stages.scan
        return {
            "fail on": ",".join(scan.fail_on),
            "ignore unfixed": str(scan.ignore_unfixed),
            "ignore entries": str(len(scan.ignore)),
            "scanner": scan.trivy,
        }
    if stage == "smoke":
        return {
            "probe": f"http://<service>:{config.stages.smoke.port}{config.stages.smoke.path}",
            "expects": ctx.sha,
        }
    if stage == "publish":
        return {"address": ctx.image_address(spec), "insecure": str(config.registry.insecure)}
    if stage in {"manifest", "policy"} and config.gitops is not None:
        env = config.stages.manifest.environment
        target = config.gitops.environments[env]
        shown = {
            "repo": config.manifest_repo(),
            "branch": config.gitops.branch,
            "path": target.path,
        }
        for each in config.image_specs():
            key = "image" if each.suffix is None else f"image {each.name}"
            shown[key] = each.image_name(env)
            sets = "sets" if each.suffix is None else f"sets {each.name}"
            shown[sets] = f"{ctx.image_address(each)}@sha256:<pushed digest>"
        return shown
    if stage == "verify":
        env = config.stages.manifest.environment
        return {"url": config.smoke[env].url, "expects": ctx.sha}
    return {}
