"""Conveyor's GitOps delivery pipeline: test, build, scan, smoke, publish, manifest.

Each function runs its stage and every stage it needs, with the same core
as ``conveyor run`` (``conveyor.stages.delivery``): nothing is pushed before
tests, scan and smoke pass, a pushed tag is never overwritten, and production
changes go through a pull request.  ``ci`` runs the whole DAG (the user's
stages of conveyor.toml and ``run.pipeline`` included); ``stage --name X``
runs one stage with what it needs; ``promote`` calls
``conveyor.gitops.promotion.promote``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import dagger
from dagger import DefaultPath, Doc, Ignore, function, object_type

from conveyor_pipelines.session import (
    Call,
    PromoteCall,
    artifacts,
    describe,
    failure_line,
    promote_image,
    raise_for_failure,
    run_delivery,
    run_stages,
)

IGNORE = [
    ".git",
    ".venv",
    "**/__pycache__",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    ".conveyor",
    "node_modules",
    "pipelines/sdk",
]

Source = Annotated[
    dagger.Directory,
    Doc("The application's repository (defaults to the repository this module lives in)"),
    DefaultPath("/"),
    Ignore(IGNORE),
]
Sha = Annotated[
    str, Doc("Full 40-character git SHA of the source: the image tag (git rev-parse HEAD)")
]
ConfigPath = Annotated[str, Doc("Path of the Conveyor configuration inside the source")]
RegistryUsername = Annotated[str | None, Doc("Registry user name (default: conveyor)")]
RegistryPassword = Annotated[
    dagger.Secret | None, Doc("Registry password or token, e.g. env://REGISTRY_PASSWORD")
]
GitToken = Annotated[
    dagger.Secret | None,
    Doc("Token that can push to the manifest repository, e.g. env://GIT_TOKEN"),
]
Environment = Annotated[
    str | None,
    Doc("GitOps environment the manifest stage commits to (default: stages.manifest.environment)"),
]
StageName = Annotated[
    str,
    Doc("The stage to run (built-in, [stages.<name>] or run.pipeline's), e.g. lint"),
]
Strict = Annotated[
    bool, Doc("Fail the call when a stage fails (the reports are then not returned)")
]
Validate = Annotated[
    Sequence[str],
    Doc(
        "A validation run, nothing published or committed: gates (every stage publish "
        "waits for) or the stages to run (repeat it, or one list: 'test build'), "
        "as conveyor run --validate"
    ),
]
Target = Annotated[str, Doc("The environment to change, e.g. production (pull request)")]
Origin = Annotated[str, Doc("The environment whose pinned image is promoted")]
ForgeToken = Annotated[
    dagger.Secret | None,
    Doc("Forge API token for the pull request when gitops.forge.token_env names its own variable"),
]

# Stages that only read do not need a real SHA; the tag they would carry is never pushed.
UNPUBLISHED_SHA = "0" * 40


@object_type
class Conveyor:
    """Conveyor's delivery pipeline as Dagger functions."""

    @function
    async def test(
        self,
        source: Source,
        config: ConfigPath = "conveyor.toml",
    ) -> dagger.Directory:
        """Run the unit tests in the test image; returns the reports (test/ holds the JUnit XML)."""
        await run_stages(Call(source, UNPUBLISHED_SHA, config), only=("test",))
        return artifacts()

    @function
    async def build(
        self,
        source: Source,
        sha: Sha = UNPUBLISHED_SHA,
        config: ConfigPath = "conveyor.toml",
    ) -> dagger.Container:
        """Build the application image from its Dockerfile; returns the image's container."""
        delivery = await run_stages(Call(source, sha, config), only=("build",))
        from conveyor.stages.context import built_image  # noqa: PLC0415 - core loads lazily

        return delivery.engine.container(built_image(delivery.outputs("build")))

    @function
    async def scan(
        self,
        source: Source,
        sha: Sha = UNPUBLISHED_SHA,
        config: ConfigPath = "conveyor.toml",
    ) -> dagger.Directory:
        """Build the image and scan it with Trivy against the severity gate; returns the reports."""
        await run_stages(Call(source, sha, config), only=("scan",))
        return artifacts()

    @function
    async def smoke(
        self,
        source: Source,
        sha: Sha = UNPUBLISHED_SHA,
        config: ConfigPath = "conveyor.toml",
    ) -> str:
        """Build the image, run it as a service and probe it until it serves this version."""
        delivery = await run_stages(Call(source, sha, config), only=("smoke",))
        return describe(delivery.outputs("smoke"))

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def publish(
        self,
        source: Source,
        sha: Sha,
        config: ConfigPath = "conveyor.toml",
        registry_username: RegistryUsername = None,
        registry_password: RegistryPassword = None,
    ) -> str:
        """Test, build, scan and smoke, then push registry/repository:<sha> once.

        Returns the pushed reference, registry/repository:<sha>@sha256:<digest>.
        """
        call = Call(
            source,
            sha,
            config,
            registry_username=registry_username,
            registry_password=registry_password,
        )
        delivery = await run_stages(call, only=("publish",))
        return delivery.outputs("publish")["image.ref"]

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def manifest(  # noqa: PLR0917 - Dagger passes every argument by name
        self,
        source: Source,
        sha: Sha,
        config: ConfigPath = "conveyor.toml",
        environment: Environment = None,
        registry_username: RegistryUsername = None,
        registry_password: RegistryPassword = None,
        git_token: GitToken = None,
    ) -> str:
        """Publish, pin the digest in the environment's kustomization, commit and push it.

        Then the policy check of the rendered environment, and the environment
        probe when smoke.<environment> is configured.  Returns the commit.
        """
        call = Call(
            source, sha, config, environment, registry_username, registry_password, git_token
        )
        delivery = await run_stages(call, only=("manifest", "policy", "verify"))
        return describe(delivery.outputs("manifest"))

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def ci(  # noqa: PLR0917 - Dagger passes every argument by name
        self,
        source: Source,
        sha: Sha,
        config: ConfigPath = "conveyor.toml",
        environment: Environment = None,
        registry_username: RegistryUsername = None,
        registry_password: RegistryPassword = None,
        git_token: GitToken = None,
        strict: Strict = False,
        validate: Validate = (),
    ) -> dagger.Directory:
        """Run the whole delivery DAG; returns the reports: summary.json, test/, scan/.

        The reports come back when a stage fails too, so CI can publish them:
        then summary.json says "ok": false and which stage failed (check it,
        e.g. jq -e .ok summary.json), and the failure is logged.  A Dagger
        function cannot return a value and fail; --strict fails the call
        instead, without the reports.  --validate gates (or stage names) is
        a pull request's run, as conveyor run --validate: nothing is
        published or committed.
        """
        call = Call(
            source,
            sha,
            config,
            environment,
            registry_username,
            registry_password,
            git_token,
            validate=tuple(validate),
        )
        delivery = await run_delivery(call)
        if not delivery.result.ok:
            # stderr is the function's log, shown by `dagger call` and in its trace
            print(failure_line(delivery), file=sys.stderr)
            if strict:
                raise_for_failure(delivery)
        return artifacts()

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def stage(  # noqa: PLR0917 - Dagger passes every argument by name
        self,
        source: Source,
        name: StageName,
        sha: Sha,
        config: ConfigPath = "conveyor.toml",
        environment: Environment = None,
        registry_username: RegistryUsername = None,
        registry_password: RegistryPassword = None,
        git_token: GitToken = None,
    ) -> str:
        """Run one stage of the DAG and every stage it needs; returns its outputs (key=value).

        Any stage: a built-in, a [stages.<name>] table of conveyor.toml or a
        Python stage of run.pipeline, as conveyor run --only NAME runs it.
        Never cached: the stage may push (publish) or commit (manifest).
        """
        call = Call(
            source, sha, config, environment, registry_username, registry_password, git_token
        )
        delivery = await run_stages(call, only=(name,))
        return describe(delivery.outputs(name))

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def promote(  # noqa: PLR0917 - Dagger passes every argument by name
        self,
        source: Source,
        to: Target,
        from_: Origin = "staging",
        config: ConfigPath = "conveyor.toml",
        git_token: GitToken = None,
        forge_token: ForgeToken = None,
    ) -> str:
        """Propose the exact image one environment runs for another.

        A commit environment gets a race-safe commit; a pull-request
        environment (production always) gets a pull (merge) request, never a
        direct write.  Returns what was committed or proposed.
        """
        call = PromoteCall(source, to, from_, config, git_token, forge_token)
        proposal = await promote_image(call)
        return proposal.describe() + "\n"
