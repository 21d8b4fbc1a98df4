"""Running the delivery pipeline for the CLI: engine, hooks, summary, exit code."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from rich.console import Console
from rich.text import Text

from conveyor.cli.display import LiveTable, PlainLog, result_table
from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.config.models import Config
from conveyor.engines.authfile import lookup_credentials
from conveyor.engines.port import Engine, RegistryAuth
from conveyor.errors import ToolMissingError
from conveyor.pipeline.hooks import Hooks
from conveyor.pipeline.result import PipelineResult
from conveyor.pipeline.scheduler import new_run_id
from conveyor.policy.rules import check_publish_address, raise_for
from conveyor.secrets import Redactor, Secret
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import deliver
from conveyor.stages.source import resolve_sha
from conveyor.telemetry.setup import start_tracing


def registry_auth(config: Config) -> RegistryAuth | None:
    """Registry credentials from the environment variables the config names."""
    registry = config.registry
    if registry.password_env is None:
        return None
    username = os.environ.get(registry.username_env or "", "") if registry.username_env else ""
    return RegistryAuth(username or "conveyor", Secret.from_env(registry.password_env))


async def find_registry_auth(config: Config) -> RegistryAuth | None:
    """The configured credentials (``password_env`` wins), else the user's login.

    The login is what ``podman login``, ``docker login`` or ``az acr login``
    left in the standard credential files (:func:`lookup_credentials`), so
    both engines push with it.
    """
    return registry_auth(config) or await lookup_credentials(config.registry.host, os.environ)


def run_directory(config: Config, run_id: str) -> Path:
    path = config.root / ".conveyor" / "runs" / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


@asynccontextmanager
async def open_engine(
    name: str, config: Config, console: Console, redactor: Redactor
) -> AsyncIterator[Engine]:
    """The engine ``name`` (``auto`` decides and says why), open for the run.

    The Dagger session opens at the run's first container operation, inside
    the run span (``run_context``), so its spans join the run's trace.
    """
    from conveyor.engines.selection import select_engine

    choice = select_engine(name, os.environ)
    console.print(f"engine: {choice.name} ({choice.reason})", highlight=False, markup=False)
    if choice.name == "dagger":
        from conveyor.engines.dagger import open_dagger_engine
        from conveyor.telemetry.setup import run_context

        async with open_dagger_engine(
            traceparent=os.environ.get("TRACEPARENT"),
            parent=run_context,
            cli=choice.cli,
            ca_bundle=config.run.ca_bundle,
            missing_platforms=config.app.missing_platforms,
        ) as engine:
            yield engine
    else:
        from conveyor.engines.podman import INSTALL_HINTS, PodmanEngine

        # Checked once here: otherwise every stage fails on its own with the same error.
        if shutil.which("podman") is None:
            raise ToolMissingError(
                "podman",
                hint=f"{INSTALL_HINTS['podman']}, or use another engine: "
                "--engine dagger (needs the Dagger CLI)",
            )
        ca = config.run.ca_bundle
        yield PodmanEngine(
            redactor=redactor,
            registry_timeout=config.registry.timeout,
            registry_ca=config.resolve(ca) if ca is not None else None,
        )


def preflight(config: Config, sha: str) -> None:
    """Refuse before any stage runs what publish would refuse at the end.

    Raises:
        PolicyError: the publish address breaks the policy (registry not allowed).
    """
    raise_for(check_publish_address(f"{config.registry.image}:{sha}", config.policy))


async def run_delivery(
    config: Config,
    *,
    engine_name: str = "auto",
    only: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
    capacity: int | None = None,
    on_failure: str | None = None,
    live: bool = False,
    console: Console | None = None,
) -> int:
    """Run the pipeline for ``config``; print the table; return the exit code."""
    console = console or (Console() if live else Console(width=120))
    sha = resolve_sha(config.resolve(config.app.source))
    preflight(config, sha)
    run_id = new_run_id()
    run_dir = run_directory(config, run_id)
    auth = await find_registry_auth(config)
    token = (
        Secret.from_env(config.gitops.token_env)
        if config.gitops and config.gitops.token_env
        else None
    )
    redactor = Redactor([s for s in (auth.password if auth else None, token) if s is not None])
    display: Hooks = LiveTable(console) if live else PlainLog()
    with start_tracing(runs_dir=run_dir.parent, redactor=redactor, set_global=True) as tracing:
        async with open_engine(engine_name, config, console, redactor) as engine:
            ctx = DeliveryContext(
                config=config,
                engine=engine,
                sha=sha,
                artifacts=run_dir / "artifacts",
                redactor=redactor,
                registry_auth=auth,
                git_token=token,
            )
            pipeline, result = await deliver(
                ctx,
                hooks=[tracing.hooks, display],
                only=only,
                skip=skip,
                capacity=capacity,
                on_failure=on_failure,
                run_id=run_id,
            )
    return report(result, pipeline.order, console, redactor, live=live, run_dir=run_dir)


def report(
    result: PipelineResult,
    order: tuple[str, ...],
    console: Console,
    redactor: Redactor,
    *,
    live: bool,
    run_dir: Path,
) -> int:
    """Print the final table (plain mode), where the reports are, the first failure; the code."""
    if not live:
        console.print(
            result_table(
                order, {r.name: r for r in result.results}, {}, title=f"run {result.run_id}"
            )
        )
    where = os.path.relpath(run_dir / "artifacts")
    console.print(
        f"reports in {where} (summary.json); timeline: conveyor trace show {result.run_id}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    failure = result.first_failure
    if failure is None:
        if not result.ok:
            return ExitCode.FAILED
        publish = next((r for r in result.results if "image.ref" in r.outputs), None)
        if publish is not None:
            note = f" ({publish.outputs['note']})" if "note" in publish.outputs else ""
            line = f"published {publish.outputs['image.ref']}{note}"
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        return ExitCode.OK
    message = redactor(str(failure.error or failure.reason))
    console.print(
        Text.assemble(("error", "bold red"), f" in stage {failure.name}: {message}"),
        soft_wrap=True,
        highlight=False,
    )
    return exit_code_for(failure.error)
