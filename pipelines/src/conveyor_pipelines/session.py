"""One module function call: the source, configuration, secrets and engine for the core.

Inside the module's runtime container there is no host and no git: the
``source`` directory is exported into the function's scratch directory so the
core can read ``conveyor.toml`` and the Dockerfile, and the engine maps that
path back to the same ``dagger.Directory`` instead of uploading a copy.  The
image tag is the ``sha`` argument (the runtime has no git to ask).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio
import dagger
from dagger import dag

from conveyor.config.loader import load_config
from conveyor.engines.dagger import DaggerEngine
from conveyor.engines.port import RegistryAuth
from conveyor.errors import ConveyorError
from conveyor.pipeline.result import PipelineResult, Status
from conveyor.secrets import Redactor, Secret

SOURCE_DIR = "source"
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True)
class Call:
    """What a function received, in the core's terms."""

    source: dagger.Directory
    sha: str
    config: str = "conveyor.toml"
    registry_username: str | None = None
    registry_password: dagger.Secret | None = None
    git_token: dagger.Secret | None = None


async def _secret_env(names: Mapping[str, dagger.Secret | None]) -> list[Secret]:
    """Put the secrets where the configuration says the core finds them."""
    secrets = []
    for name, value in names.items():
        if value is not None:
            plaintext = await value.plaintext()
            os.environ[name] = plaintext
            secrets.append(Secret(name, plaintext))
    return secrets


async def run_stages(
    call: Call, only: tuple[str, ...] = (), environment: str | None = None
) -> tuple[PipelineResult, dict[str, dict[str, str]], DaggerEngine]:
    """Run ``only`` (and what it needs), or the whole DAG; raise on failure.

    Returns:
        The run's result, the outputs of every stage, and the engine (which
        holds the built image).

    Raises:
        ConveyorError: a stage failed; the first failure's error.
    """
    from conveyor.pipeline.scheduler import run_pipeline  # noqa: PLC0415 - core loads lazily
    from conveyor.stages.context import DeliveryContext  # noqa: PLC0415
    from conveyor.stages.delivery import delivery_pipeline  # noqa: PLC0415

    root = Path(await anyio.Path(SOURCE_DIR).resolve())
    await call.source.export(str(root))
    config = load_config(root / call.config)
    if environment is not None:
        stages = config.stages.model_copy(
            update={
                "manifest": config.stages.manifest.model_copy(update={"environment": environment})
            }
        )
        config = config.model_copy(update={"stages": stages})
    registry = config.registry
    token_env = config.gitops.token_env if config.gitops else None
    secrets = await _secret_env(
        {
            **({registry.password_env: call.registry_password} if registry.password_env else {}),
            **({token_env: call.git_token} if token_env else {}),
        },
    )
    password = next((s for s in secrets if s.name == registry.password_env), None)
    auth = RegistryAuth(call.registry_username or "conveyor", password) if password else None
    engine = DaggerEngine(
        dag, known_sources={root: call.source}, service_access="direct", ca_bundle=None
    )
    token = next((s for s in secrets if s.name == token_env), None)
    ctx = DeliveryContext(
        config=config,
        engine=engine,
        sha=call.sha,
        artifacts=Path(await anyio.Path(ARTIFACTS_DIR).resolve()),
        redactor=Redactor(secrets),
        registry_auth=auth,
        git_token=token,
    )
    result = await run_pipeline(delivery_pipeline(ctx), only=only)
    outputs = {r.name: dict(r.outputs) for r in result.results}
    failure = result.first_failure
    if failure is not None:
        if isinstance(failure.error, ConveyorError):
            raise failure.error
        raise ConveyorError(f"stage {failure.name!r} failed: {failure.reason}")
    skipped = [r for r in result.results if r.status is Status.SKIPPED and r.name in only]
    if skipped:
        raise ConveyorError(f"stage {skipped[0].name!r} was skipped: {skipped[0].reason}")
    return result, outputs, engine


def artifacts() -> dagger.Directory:
    """The run's reports (JUnit, SARIF, summary.json) as a directory to export."""
    return dag.current_module().workdir(ARTIFACTS_DIR)


def describe(outputs: Mapping[str, str]) -> str:
    """A stage's outputs as ``key=value`` lines."""
    return "".join(f"{key}={value}\n" for key, value in sorted(outputs.items()))
