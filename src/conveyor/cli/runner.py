"""Running the delivery pipeline for the CLI: engine, hooks, summary, exit code, signals.

SIGINT, SIGTERM and SIGHUP cancel a run the same way (:data:`SIGNALS`): the
running stages are cancelled (their processes killed with their process
groups, their containers and temporary directories removed), no other stage
starts, the report stage still writes ``summary.json``, the run span ends,
one ``interrupted by SIG...`` line goes to stderr, and the exit code is 128 +
the signal's number.  A push already under way is given a bounded time to
land (:data:`conveyor.gitops.git.PUSH_SHIELD`).  Further signals change nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from rich.console import Console
from rich.text import Text

from conveyor.atomic import write_atomically
from conveyor.changes import detect
from conveyor.cli.display import LiveTable, PlainLog, result_table
from conveyor.cli.exit_codes import ExitCode, exit_code_for, exit_code_for_signal
from conveyor.config.models import Config
from conveyor.engines.authfile import lookup_credentials
from conveyor.engines.port import Engine, RegistryAuth
from conveyor.errors import ConfigError, ToolMissingError
from conveyor.pipeline.hooks import Hooks
from conveyor.pipeline.result import PipelineResult, Status
from conveyor.pipeline.scheduler import Interruption, new_run_id
from conveyor.policy.rules import check_publish_address, raise_for
from conveyor.secrets import Redactor, Secret
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import deliver, select_stages
from conveyor.stages.source import resolve_sha
from conveyor.stages.validation import check_validation, describe
from conveyor.telemetry.setup import start_tracing
from conveyor.telemetry.store import RunStore


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
    """The run's directory in ``.conveyor/runs``, checked writable before any stage runs.

    Raises:
        RunStoreError: the run store cannot be written.
    """
    return RunStore(config.root / ".conveyor" / "runs").prepare(run_id)


def record_run_id(path: Path, run_id: str) -> None:
    """Write ``run_id`` to ``path`` (``--run-id-file``): a CI step then collects this run.

    Raises:
        ConfigError: the file cannot be written.
    """
    try:
        write_atomically(path, run_id + "\n")
    except OSError as error:
        raise ConfigError(
            path,
            None,
            f"cannot write the run id (--run-id-file): {error.strerror or error}",
            hint="name a file in a writable directory",
        ) from None


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
        podman = PodmanEngine(
            redactor=redactor,
            registry_timeout=config.registry.timeout,
            registry_ca=config.resolve(ca) if ca is not None else None,
        )
        try:
            # a service's removal does not hold up the stages after it
            async with podman.removing_in_background():
                yield podman
        finally:
            # every container and network of this run, whatever ended it (a signal, an error);
            # no sweep when the removal of each one was confirmed
            with anyio.CancelScope(shield=True), anyio.move_on_after(60):
                if podman.may_have_leftovers:
                    await podman.remove_leftovers()


def preflight(
    config: Config,
    sha: str,
    validate: Sequence[str] = (),
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> None:
    """Refuse before any stage runs what publish would refuse at the end.

    The stage graph is built once here too, so that a wrong graph, a
    ``run.pipeline`` that does not load or an ``--only``, ``--skip`` or
    ``--validate`` name that is no stage stops the run before the engine, the
    run directory or a credential is touched.

    Raises:
        PolicyError: a publish address breaks the policy (registry not allowed);
            every image's, with ``[images]``.
        ConfigError: the stage graph is wrong, or ``run.pipeline`` does not load.
        UnknownStageError: an ``--only``, ``--skip`` or ``--validate`` name is no stage.
    """
    for image in config.image_specs():
        raise_for(check_publish_address(config.image_address(image, sha), config.policy))
    pipeline, reasons = check_validation(config, sha, validate)
    select_stages(config, pipeline, only, skip, reasons)


DAGGER_CLOUD_TOKEN = "DAGGER_CLOUD_TOKEN"  # noqa: S105 - the variable's name, not a token
"""The Dagger Cloud token's variable (dagger-for-github's ``cloud-token`` sets it)."""

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that cancel a run (Ctrl-C, a CI job's cancel, a closed terminal)."""


async def _watch_signals(
    interruption: Interruption,
    received: list[int],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(*SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            if not received:
                received.append(signum)
                interruption.interrupt(f"interrupted by {signal.Signals(signum).name}")


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
    changed_since: str | None = None,
    images: frozenset[str] | None = None,
    run_id_file: Path | None = None,
    validate: tuple[str, ...] = (),
) -> int:
    """Run the pipeline for ``config``; print the table; return the exit code.

    ``changed_since``: the base commit stages with ``paths`` compare with
    (default: what CI names; unknown: every stage runs).  ``validate``: the
    names of a validation run (:mod:`conveyor.stages.validation`).

    A signal of :data:`SIGNALS` cancels the run (see the module docstring).
    """
    interruption = Interruption()
    received: list[int] = []
    try:
        async with anyio.create_task_group() as watching:
            await watching.start(_watch_signals, interruption, received)
            try:
                code, result, run_dir = await _deliver(
                    config,
                    engine_name=engine_name,
                    only=only,
                    skip=skip,
                    capacity=capacity,
                    on_failure=on_failure,
                    live=live,
                    console=console,
                    interruption=interruption,
                    changed_since=changed_since,
                    images=images,
                    run_id_file=run_id_file,
                    validate=validate,
                )
            finally:
                watching.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # the watcher only ever ends cancelled: what failed is the run itself
        raise _sole(group) from None
    if not received:
        return code
    print(interrupted_line(interruption.reason, result, run_dir), file=sys.stderr)
    return exit_code_for_signal(received[0])


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a task group of a single working task wraps."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def interrupted_line(reason: str, result: PipelineResult, run_dir: Path) -> str:
    """The one line an interrupted run ends with: why, what was cancelled, where it is recorded."""
    cancelled = [r.name for r in result.results if r.status is Status.CANCELLED]
    summary = os.path.relpath(run_dir / "artifacts" / "summary.json")
    return (
        f"{reason}: cancelled {', '.join(cancelled) or 'nothing'}; "
        f"run {result.run_id} recorded in {summary}"
    )


async def _deliver(
    config: Config,
    *,
    engine_name: str,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    capacity: int | None,
    on_failure: str | None,
    live: bool,
    console: Console | None,
    interruption: Interruption,
    changed_since: str | None,
    images: frozenset[str] | None,
    run_id_file: Path | None,
    validate: tuple[str, ...],
) -> tuple[int, PipelineResult, Path]:
    console = console or (Console() if live else Console(width=120))
    sha = resolve_sha(config.resolve(config.app.source))
    preflight(config, sha, validate, only, skip)
    if validate:
        console.print(describe(validate), soft_wrap=True, highlight=False, markup=False)
    changes = detect(config.root, sha, changed_since)
    if changes.base is not None and not changes.known:
        # a base was named (--changed-since, or by CI) but cannot be compared with
        message = f"changes since {changes.base} unknown ({changes.reason}): every stage runs"
        console.print(message, soft_wrap=True, highlight=False, markup=False)
    run_id = new_run_id()
    run_dir = run_directory(config, run_id)
    if run_id_file is not None:
        record_run_id(run_id_file, run_id)
    auth = await find_registry_auth(config)
    token = (
        Secret.from_env(config.gitops.token_env)
        if config.gitops and config.gitops.token_env
        else None
    )
    # the Dagger Cloud token of `dagger run` is masked too: a trace link never carries it
    cloud = Secret.from_env(DAGGER_CLOUD_TOKEN) if os.environ.get(DAGGER_CLOUD_TOKEN) else None
    redactor = Redactor(
        [s for s in (auth.password if auth else None, token, cloud) if s is not None]
    )
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
                changes=changes,
                images=images,
            )
            pipeline, result = await deliver(
                ctx,
                hooks=[tracing.hooks, display],
                only=only,
                skip=skip,
                capacity=capacity,
                on_failure=on_failure,
                run_id=run_id,
                interruption=interruption,
                validate=validate,
            )
    code = report(
        result,
        pipeline.order,
        console,
        redactor,
        live=live,
        run_dir=run_dir,
        bookkeeping=tracing.store.failures,
    )
    return code, result, run_dir


def report(
    result: PipelineResult,
    order: tuple[str, ...],
    console: Console,
    redactor: Redactor,
    *,
    live: bool,
    run_dir: Path,
    bookkeeping: Sequence[str] = (),
    errors: Console | None = None,
) -> int:
    """Print the final table (plain mode), where the reports are, the first failure; the code.

    Errors and warnings go to ``errors`` (stderr by default).  What could not
    be recorded (``bookkeeping``: the run store's failures, a summary.json not
    written) is one warning: it never changes the exit code, which says what
    was delivered.
    """
    errors = errors or Console(stderr=True, width=console.width)
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
    code = _outcome(result, console, errors, redactor)
    unrecorded = [*bookkeeping]
    unrecorded += [r.outputs["warning"] for r in result.results if "warning" in r.outputs]
    if unrecorded:
        errors.print(
            f"warning: the run record is incomplete ({'; '.join(unrecorded)}); "
            f"the run itself {'succeeded' if code == ExitCode.OK else 'ended as shown'} "
            "and its exit code says so",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    return code


def _outcome(result: PipelineResult, console: Console, errors: Console, redactor: Redactor) -> int:
    """Print what was published, or the first failure (on ``errors``); the exit code."""
    failure = result.first_failure
    if failure is None:
        if not result.ok:
            return ExitCode.FAILED
        # one line per published image (several with [images])
        for publish in (r for r in result.results if "image.ref" in r.outputs):
            note = f" ({publish.outputs['note']})" if "note" in publish.outputs else ""
            line = f"published {publish.outputs['image.ref']}{note}"
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        return ExitCode.OK
    message = redactor(str(failure.error or failure.reason))
    errors.print(
        Text.assemble(("error", "bold red"), f" in stage {failure.name}: {message}"),
        soft_wrap=True,
        highlight=False,
    )
    return exit_code_for(failure.error)
