"""The delivery DAG: which stage needs which, built from the configuration.

::

    test ─────────────────────┐
    build ─┬─ scan ───────────┼─ publish ─ manifest ─┬─ verify   (when smoke.<env> is set)
           └─ smoke ──────────┘                      └─ policy
    report (always: writes summary.json whatever happened)

Nothing is pushed before tests, scan and smoke pass; nothing is committed
before the push.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from conveyor.atomic import write_atomically
from conveyor.config.models import StageOptions
from conveyor.errors import ConfigError
from conveyor.pipeline.graph import Outputs, Pipeline, Stage, StageInputs
from conveyor.pipeline.hooks import HookGroup, Hooks
from conveyor.pipeline.result import PipelineResult, Status
from conveyor.pipeline.scheduler import Interruption, run_pipeline
from conveyor.stages.context import DeliveryContext

DeliveryFunction = Callable[[DeliveryContext, StageInputs], Awaitable[Outputs]]


def stage_function(module: str, name: str) -> DeliveryFunction:
    """The stage function ``module.name``, imported when the stage first runs.

    Describing the pipeline (``conveyor graph``, ``plan``) then loads no
    stage's dependencies (httpx, ruamel.yaml, the Trivy adapter ...).
    """

    async def run(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
        function: DeliveryFunction = getattr(importlib.import_module(module), name)
        return await function(ctx, inputs)

    run.__name__ = run.__qualname__ = name
    return run


run_test = stage_function("conveyor.stages.test", "run_test")
run_build = stage_function("conveyor.stages.build", "run_build")
run_scan = stage_function("conveyor.stages.scan", "run_scan")
run_smoke = stage_function("conveyor.stages.smoke", "run_smoke")
run_verify = stage_function("conveyor.stages.smoke", "run_verify")
run_publish = stage_function("conveyor.stages.publish", "run_publish")
run_manifest = stage_function("conveyor.stages.manifest", "run_manifest")
run_policy = stage_function("conveyor.stages.manifest", "run_policy")


def delivery_pipeline(ctx: DeliveryContext) -> Pipeline:
    """The stages the configuration enables, wired in delivery order.

    A disabled stage (``enabled = false``) is left out and its dependents do
    not wait for it: disabling ``scan`` publishes unscanned images, which the
    configuration then says openly.
    """
    config = ctx.config
    stages = config.stages
    env = stages.manifest.environment
    added: list[Stage] = []

    def add(
        name: str,
        function: DeliveryFunction,
        needs: tuple[str, ...],
        options: StageOptions,
        description: str,
    ) -> None:
        present = {s.name for s in added}
        added.append(
            Stage(
                name,
                functools.partial(function, ctx),
                needs=tuple(n for n in needs if n in present),
                timeout=options.timeout,
                retries=options.retries,
                description=description,
                details=plan_details(ctx, name),
            )
        )

    if stages.test is not None and stages.test.enabled:
        add("test", run_test, (), stages.test, "unit tests in the test image")
    add("build", run_build, (), stages.build, "build the image from the Dockerfile")
    if stages.scan.enabled:
        add("scan", run_scan, ("build",), stages.scan, "Trivy scan of the image, severity gate")
    if stages.smoke.enabled:
        add("smoke", run_smoke, ("build",), stages.smoke, "run the image, probe its version")
    add(
        "publish",
        run_publish,
        ("test", "build", "scan", "smoke"),
        stages.publish,
        f"push {config.registry.image}:<sha>, never overwrite a tag",
    )
    if config.gitops is not None and stages.manifest.enabled:
        add(
            "manifest",
            run_manifest,
            ("publish",),
            stages.manifest,
            f"pin the digest in {env}'s manifests, commit, push",
        )
        if config.gitops.environments[env].kustomize:  # policy renders the kustomization
            add(
                "policy",
                run_policy,
                ("manifest",),
                stages.manifest,
                f"render {env} and check every image against the policy",
            )
        if env in config.smoke:
            add(
                "verify",
                run_verify,
                ("manifest",),
                stages.smoke,
                f"probe {config.smoke[env].url} until it serves the new version",
            )
    names = tuple(s.name for s in added)
    added.append(
        Stage(
            "report",
            functools.partial(write_summary, ctx, stages=names),
            needs=names,
            always=True,
            description="write summary.json (always)",
        )
    )
    return Pipeline(added)


async def write_summary(
    ctx: DeliveryContext, inputs: StageInputs, *, stages: Sequence[str] = ()
) -> Outputs:
    """Write ``summary.json``: every stage's status, reason, duration, attempts and outputs.

    The statuses come from ``ctx.journal`` (the runner passes it among the
    run's hooks); a stage the journal did not see is ``unknown``.  ``ok`` is
    true when no stage failed, was cancelled or is unknown, so a CI job can
    fail on it.  Layout::

        {"sha": ..., "run_id": ..., "ok": true|false,
         "stages": [{"name", "status", "reason", "duration", "attempts"}, ...],
         "outputs": {stage: {key: value}}}

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
    # as PipelineResult.ok: a stage skipped for a failed dependency implies a failure
    ok = all(row["status"] in {Status.SUCCESS.value, Status.SKIPPED.value} for row in rows)
    summary = {
        "sha": ctx.sha,
        "run_id": ctx.journal.run_id,
        "ok": ok,
        "stages": rows,
        "outputs": {name: dict(outputs) for name, outputs in inputs.items()},
    }
    path = ctx.artifacts / "summary.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    except OSError as error:
        # bookkeeping, not delivery: what was pushed and committed stays the run's result
        return {"ok": str(ok).lower(), "warning": f"{path}: {error.strerror or error}"}
    return {"summary": str(path), "ok": str(ok).lower()}


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
) -> tuple[Pipeline, PipelineResult]:
    """Run the delivery pipeline of ``ctx``: the one way the CLI and the Dagger module run it.

    ``hooks`` watch the run (tracing, display); the context's journal is
    always among them, so the report stage sees every stage's result.
    ``interruption`` cancels the run (the CLI's signal handling).
    """
    config = ctx.config
    pipeline = delivery_pipeline(ctx)
    policy = on_failure or config.run.on_failure
    if policy not in {"cancel", "finish"}:  # the CLI checks its option; this is the API's guard
        raise ConfigError(None, "on_failure", f"{policy!r} is neither 'finish' nor 'cancel'")
    result = await run_pipeline(
        pipeline,
        capacity=capacity or config.run.capacity,
        on_failure="cancel" if policy == "cancel" else "finish",
        hooks=HookGroup([*hooks, ctx.journal]),
        only=only,
        skip=skip,
        run_id=run_id,
        interruption=interruption,
        attributes={
            "conveyor.app": config.app.name,
            "conveyor.source.sha": ctx.sha,
            "conveyor.engine": ctx.engine.name,
        },
    )
    return pipeline, result


def plan_details(ctx: DeliveryContext, stage: str) -> dict[str, str]:  # noqa: PLR0911 - one return per stage
    """What ``stage`` would do, with every reference resolved (for ``conveyor plan``)."""
    config = ctx.config
    app = config.app
    if stage == "test" and config.stages.test is not None:
        test = config.stages.test
        return {
            "image": test.image,
            "command": " ".join(test.command),
            "source": str(config.resolve(app.source)),
            "junit": test.junit or "-",
        }
    if stage == "build":
        args = {**app.build_args, "GIT_SHA": ctx.sha}
        return {
            "context": str(config.resolve(app.context)),
            "dockerfile": app.dockerfile,
            "build args": " ".join(f"{k}={v}" for k, v in sorted(args.items())),
            "platforms": ",".join(app.platforms) or "engine default",
        }
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
        return {"address": ctx.address, "insecure": str(config.registry.insecure)}
    if stage in {"manifest", "policy"} and config.gitops is not None:
        env = config.stages.manifest.environment
        target = config.gitops.environments[env]
        return {
            "repo": config.manifest_repo(),
            "branch": config.gitops.branch,
            "path": target.path,
            "image": config.image_name(env),
            "sets": f"{config.registry.image}:{ctx.sha}@sha256:<pushed digest>",
        }
    if stage == "verify":
        env = config.stages.manifest.environment
        return {"url": config.smoke[env].url, "expects": ctx.sha}
    return {}
