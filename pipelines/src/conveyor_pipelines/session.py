"""One module function call: the source, configuration, secrets and engine for the core.

Inside the module's runtime container there is no host: the ``source``
directory is exported into the function's scratch directory so the core can
read ``conveyor.toml`` and the Dockerfile, and the engine maps that path back
to the same ``dagger.Directory`` instead of uploading a copy.  The image tag
is the ``sha`` argument (the runtime has no checkout to ask).

GitOps in the runtime: git is in the runtime image (``[tool.dagger]
base-image`` in pipelines/pyproject.toml); kubectl is not.  The manifest
repository is cloned into the scratch directory (``GITOPS_DIR``) and rendered
by :class:`~conveyor.engines.dagger_render.DaggerRenderer` in a kubectl
container, which loads the clone with ``currentModule.workdir``.

API:
    ``run_delivery(call, only=()) -> Delivery`` runs the delivery DAG (or the
    stages ``only`` names and what they need) and keeps every result as a
    value; ``call.validate`` makes it a validation run, read and checked by
    the same code as ``conveyor run --validate``
    (:mod:`conveyor.stages.validation`); ``raise_for_failure(delivery, only)``
    turns a failed run into the first failure's error; ``promote_image(call)
    -> Proposal`` runs :func:`conveyor.gitops.promotion.promote`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import dagger
from dagger import dag

from conveyor.atomic import write_atomically
from conveyor.config.loader import load_config
from conveyor.config.models import Config
from conveyor.engines.authfile import lookup_credentials
from conveyor.engines.dagger import DaggerEngine
from conveyor.engines.dagger_render import DaggerRenderer
from conveyor.engines.port import RegistryAuth
from conveyor.errors import ConfigError, ConveyorError
from conveyor.gitops.proposal import Proposal
from conveyor.pipeline.result import PipelineResult, Status
from conveyor.secrets import Redactor, Secret

SOURCE_DIR = "source"
ARTIFACTS_DIR = "artifacts"
GITOPS_DIR = "gitops"
"""Where the manifest repository is cloned: under the scratch directory, for the renderer."""
ENVIRONMENT_OVERRIDE = "CONVEYOR_STAGES__MANIFEST__ENVIRONMENT"
"""The configuration's own override of ``stages.manifest.environment`` (validated)."""


@dataclass(frozen=True)
class Call:
    """What a delivery function received, in the core's terms."""

    source: dagger.Directory
    sha: str
    config: str = "conveyor.toml"
    environment: str | None = None
    registry_username: str | None = None
    registry_password: dagger.Secret | None = None
    git_token: dagger.Secret | None = None
    validate: Sequence[str] = ()
    """The values of ``--validate``, as given (none: no validation run)."""


@dataclass(frozen=True)
class PromoteCall:
    """What the ``promote`` function received."""

    source: dagger.Directory
    target: str
    origin: str = "staging"
    config: str = "conveyor.toml"
    git_token: dagger.Secret | None = None
    forge_token: dagger.Secret | None = None


@dataclass(frozen=True)
class Delivery:
    """A finished run: its results, the stages in order, the engine that holds images,
    and the redactor of the run's secrets."""

    result: PipelineResult
    order: tuple[str, ...]
    engine: DaggerEngine
    redactor: Redactor

    def outputs(self, stage: str) -> Mapping[str, str]:
        """The outputs ``stage`` produced."""
        return self.result[stage].outputs


async def scratch(name: str) -> Path:
    """``name`` in the function's scratch directory (the runtime's working directory)."""
    path = await anyio.Path(name).resolve()
    await path.mkdir(parents=True, exist_ok=True)
    return Path(path)


async def load(source: dagger.Directory, config: str, environment: str | None = None) -> Config:
    """Export ``source`` to the scratch directory and load its configuration.

    Raises:
        ConfigError: the configuration is missing or invalid (an unknown
            ``environment`` included).
    """
    root = await scratch(SOURCE_DIR)
    await source.export(str(root))
    env = dict(os.environ)
    if environment is not None:
        env[ENVIRONMENT_OVERRIDE] = environment
    return load_config(root / config, env=env)


async def reveal(secret: dagger.Secret | None, name: str) -> Secret | None:
    """The plaintext of ``secret`` as a core :class:`Secret` named ``name``."""
    if secret is None:
        return None
    return Secret(name, await secret.plaintext())


def _selection(config: Config, stages: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...]:
    """``wanted`` narrowed to the stages this configuration's pipeline has.

    Raises:
        ConfigError: the first wanted stage is not in the pipeline.
    """
    if wanted and wanted[0] not in stages:
        raise ConfigError(
            config.root / "conveyor.toml",
            f"stages.{wanted[0]}",
            f"stage {wanted[0]!r} is not in this configuration's pipeline "
            f"(its stages: {', '.join(stages)})",
            hint="enable the stage (manifest, policy and verify also need [gitops])",
        )
    return tuple(name for name in wanted if name in stages)


async def run_delivery(call: Call, only: tuple[str, ...] = ()) -> Delivery:
    """Run ``only`` (the first name, the others when configured) or the whole DAG.

    Stage failures are results, not exceptions; see :func:`raise_for_failure`.
    A validation run (``call.validate``) is checked before a secret is read
    or the engine is asked anything, and says what it runs on stderr (the
    function's log), as ``conveyor run --validate`` does.

    Raises:
        ConfigError: the configuration is invalid, the first stage of
            ``only`` is not part of it, or ``gates`` is given with stage names.
        UnknownStageError: a ``validate`` name is no stage.
    """
    from conveyor.stages.context import DeliveryContext  # noqa: PLC0415
    from conveyor.stages.delivery import deliver, delivery_pipeline  # noqa: PLC0415
    from conveyor.stages.validation import (  # noqa: PLC0415
        check_validation,
        validation_names,
        validation_skips,
    )
    from conveyor.stages.validation import describe as describe_validation  # noqa: PLC0415
    from conveyor.telemetry.setup import start_tracing  # noqa: PLC0415

    names = validation_names(call.validate)
    config = await load(call.source, call.config, call.environment)
    if names:
        check_validation(config, call.sha, names)
        print(describe_validation(names), file=sys.stderr)
    registry = config.registry
    token_env = config.gitops.token_env if config.gitops else None
    password = await reveal(call.registry_password, registry.password_env or "registry-password")
    token = await reveal(call.git_token, token_env or "git-token")
    # Build and test secrets are read from the environment by the configured names.
    for secret, name in ((password, registry.password_env), (token, token_env)):
        if secret is not None and name is not None:
            os.environ[name] = secret.reveal()
    # A login in the runtime's credential files when no password was passed.
    auth = (
        RegistryAuth(call.registry_username or "conveyor", password)
        if password
        else await lookup_credentials(registry.host, os.environ)
    )
    secrets = [s for s in (auth.password if auth else None, token) if s is not None]
    engine = DaggerEngine(
        dag,
        known_sources={config.root: call.source},
        service_access="direct",
        ca_bundle=config.run.ca_bundle,
        # the runtime has no host: files the stages write (the scan's tarball)
        # are read back through currentModule.workdir
        module_workdir=await scratch("."),
        missing_platforms=config.app.missing_platforms,
    )
    ctx = DeliveryContext(
        config=config,
        engine=engine,
        sha=call.sha,
        artifacts=await scratch(ARTIFACTS_DIR),
        redactor=Redactor(secrets),
        registry_auth=auth,
        git_token=token,
        render=DaggerRenderer(dag, await scratch(".")),
        workdir=await scratch(GITOPS_DIR),
    )
    described = delivery_pipeline(ctx)
    selected = _selection(config, described.order, only)
    # what runs: the selection and what it needs (a user's stage may need the manifest)
    running = described.upstream(selected) if selected else set(described.order)
    # a validation run never gets to the manifest: its repository need not be reachable
    running -= described.downstream(validation_skips(ctx, described, names))
    if config.gitops is not None and {"manifest", "policy"} & running:
        check_manifest_repo(config)
    # The engine gives the module TRACEPARENT and OTEL_*: the run's spans nest
    # under the function call, beside Dagger's own.
    with start_tracing(
        runs_dir=ctx.artifacts.parent / "runs", redactor=ctx.redactor, set_global=True
    ) as tracing:
        pipeline, result = await deliver(ctx, hooks=[tracing.hooks], only=selected, validate=names)
    await anyio.to_thread.run_sync(relocate_summary, ctx.artifacts)
    return Delivery(result, pipeline.order, engine, ctx.redactor)


def relocate_summary(artifacts: Path) -> None:
    """Make summary.json's paths relative to the reports directory it lies in.

    The stages write paths as the module runtime sees them
    (``/scratch/artifacts/test/junit.xml``); the caller exports the directory
    anywhere (``dagger call ci ... export --path=reports``), where
    ``test/junit.xml`` is what names the file.  Written through
    :func:`conveyor.atomic.write_atomically`: a reader never sees half a summary.
    """
    path = artifacts / "summary.json"
    if not path.is_file():
        return
    summary = json.loads(path.read_text(encoding="utf-8"))
    root = str(artifacts.resolve())
    for outputs in (summary.get("outputs") or {}).values():
        for key, value in list(outputs.items()):
            if isinstance(value, str) and (value == root or value.startswith(root + "/")):
                outputs[key] = os.path.relpath(value, root)
    write_atomically(path, json.dumps(summary, indent=2) + "\n")


def check_manifest_repo(config: Config) -> None:
    """Refuse a relative ``gitops.repo`` path the module's runtime cannot see.

    A relative path resolves against the source directory (where the module
    exported its ``source`` argument), so one inside the source works; one
    that leaves it (``../manifests.git``) names the caller's machine, which a
    Dagger function has no access to: only its arguments reach it.  URLs and
    absolute paths are taken as given.

    Raises:
        ConfigError: ``gitops.repo`` is a relative path that leaves the source.
    """
    written = config.gitops.repo if config.gitops is not None else ""
    repo = config.manifest_repo()
    if repo == written or "://" in repo:
        return  # a URL (https://, ssh://, git@host:...) or an absolute path
    resolved = Path(repo).resolve()
    if resolved.is_relative_to(config.root.resolve()):
        return
    raise ConfigError(
        config.root / "conveyor.toml",
        "gitops.repo",
        f"{written!r} resolves to {resolved}, outside the source "
        "directory; a Dagger function sees only its arguments, not the machine that calls it",
        hint="use the manifest repository's URL (https:// or ssh://), e.g. "
        "CONVEYOR_GITOPS__REPO=https://github.com/acme/manifests.git, or run "
        "'conveyor promote' / 'conveyor run' on that machine",
    )


def raise_for_failure(delivery: Delivery, only: tuple[str, ...] = ()) -> None:
    """Raise the first failure's error, or say why a wanted stage did not run.

    Raises:
        ConveyorError: a stage failed (its own error when it is one), or the
            first stage of ``only`` was skipped.
    """
    result = delivery.result
    failure = result.first_failure
    if failure is not None:
        if isinstance(failure.error, ConveyorError):
            raise failure.error
        raise ConveyorError(f"stage {failure.name!r} failed: {failure.reason}")
    for name in only[:1]:
        stage = result[name]
        if stage.status is not Status.SUCCESS:
            raise ConveyorError(f"stage {name!r} was {stage.status.value}: {stage.reason}")


def failure_line(delivery: Delivery) -> str:
    """One line naming the failed stages and the first failure's reason."""
    result = delivery.result
    failed = [r.name for r in result.results if r.status in (Status.FAILED, Status.CANCELLED)]
    first = result.first_failure
    reason = f": {first.name}: {first.reason}" if first is not None else ""
    return delivery.redactor(f"conveyor: the pipeline failed (stages: {', '.join(failed)}){reason}")


async def run_stages(call: Call, only: tuple[str, ...]) -> Delivery:
    """:func:`run_delivery`, then :func:`raise_for_failure`: for single-stage functions."""
    delivery = await run_delivery(call, only)
    raise_for_failure(delivery, only)
    return delivery


async def promote_image(call: PromoteCall) -> Proposal:
    """Propose the image ``call.origin`` runs for ``call.target``, with the core's promote.

    The tokens reach the core under the names the configuration gives them
    (``gitops.token_env``, ``gitops.forge.token_env``); the forge token
    defaults to the git token.

    Raises:
        ConfigError: a token was given but the configuration names no variable for it.
        GitOpsError, ForgeError, UnreachableError: see ``conveyor.gitops.promotion.promote``.
    """
    from conveyor.gitops.promotion import promote  # noqa: PLC0415 - core loads lazily

    config = await load(call.source, call.config)
    gitops = config.gitops
    if gitops is not None:
        check_manifest_repo(config)
    env = dict(os.environ)
    if gitops is not None:  # without [gitops], promote itself says what is missing
        git_env = gitops.token_env
        forge_env = (gitops.forge.token_env or git_env) if gitops.forge else None
        if call.git_token is not None:
            env[_variable(config, git_env, "gitops.token_env")] = await call.git_token.plaintext()
        if call.forge_token is not None and gitops.forge is not None:
            name = _variable(config, forge_env, "gitops.forge.token_env")
            if name == git_env and call.git_token is not None:
                raise ConfigError(
                    config.root / "conveyor.toml",
                    "gitops.forge.token_env",
                    f"is {name!r}, the git token's variable, so a separate forge token "
                    "cannot be passed",
                    hint='drop --forge-token, or set gitops.forge.token_env = "FORGE_TOKEN"',
                )
            env[name] = await call.forge_token.plaintext()
    work = await scratch("promote")
    return await anyio.to_thread.run_sync(
        functools.partial(promote, config, call.origin, call.target, env=env, workdir=work)
    )


def _variable(config: Config, name: str | None, field: str) -> str:
    """The variable a token passed to a function is put in.

    Raises:
        ConfigError: the configuration names none.
    """
    if name is None:
        raise ConfigError(
            config.root / "conveyor.toml",
            field,
            "is not set, so the token passed to the function has nowhere to go",
            hint=f'set {field} = "GITOPS_TOKEN" (any variable name)',
        )
    return name


def artifacts() -> dagger.Directory:
    """The run's reports (summary.json, test/, scan/) as a directory to export."""
    return dag.current_module().workdir(ARTIFACTS_DIR)


def describe(outputs: Mapping[str, str]) -> str:
    """A stage's outputs as ``key=value`` lines."""
    return "".join(f"{key}={value}\n" for key, value in sorted(outputs.items()))
