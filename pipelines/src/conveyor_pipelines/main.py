"""Conveyor's GitOps delivery pipeline: test, build, scan, smoke, publish, manifest.

Each function runs its stage and every stage it needs, with the same core
as ``conveyor run``: nothing is pushed before tests, scan and smoke pass, a
pushed tag is never overwritten, and production changes go through a pull
request.  ``ci`` runs the whole DAG.
"""

from __future__ import annotations

from typing import Annotated

import dagger
from dagger import DefaultPath, Doc, Ignore, function, object_type

from conveyor_pipelines.session import Call, artifacts, describe, run_stages

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
Environment = Annotated[str, Doc("The gitops environment to promote to, e.g. production")]

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
        """Run the unit tests in the test image; returns the reports (JUnit XML)."""
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
        _, outputs, engine = await run_stages(Call(source, sha, config), only=("build",))
        from conveyor.stages.context import built_image  # noqa: PLC0415 - core loads lazily

        return engine.container(built_image(outputs["build"]))

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
        _, outputs, _ = await run_stages(Call(source, sha, config), only=("smoke",))
        return describe(outputs["smoke"])

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
        call = Call(source, sha, config, registry_username, registry_password)
        _, outputs, _ = await run_stages(call, only=("publish",))
        return outputs["publish"]["image.ref"]

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def manifest(  # noqa: PLR0917 - Dagger passes every argument by name
        self,
        source: Source,
        sha: Sha,
        config: ConfigPath = "conveyor.toml",
        registry_username: RegistryUsername = None,
        registry_password: RegistryPassword = None,
        git_token: GitToken = None,
    ) -> str:
        """Publish, then pin the digest in the environment's kustomization and commit it."""
        call = Call(source, sha, config, registry_username, registry_password, git_token)
        _, outputs, _ = await run_stages(call, only=("manifest",))
        return describe(outputs["manifest"])

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def ci(  # noqa: PLR0917 - Dagger passes every argument by name
        self,
        source: Source,
        sha: Sha,
        config: ConfigPath = "conveyor.toml",
        registry_username: RegistryUsername = None,
        registry_password: RegistryPassword = None,
        git_token: GitToken = None,
    ) -> dagger.Directory:
        """Run the whole delivery DAG; returns the run's reports and summary.json."""
        call = Call(source, sha, config, registry_username, registry_password, git_token)
        await run_stages(call)
        return artifacts()

    @function(cache="never")  # type: ignore[call-overload, untyped-decorator]  # dagger-io's overloads omit cache
    async def promote(  # noqa: PLR0917 - Dagger passes every argument by name
        self,
        source: Source,
        sha: Sha,
        environment: Environment,
        config: ConfigPath = "conveyor.toml",
        registry_username: RegistryUsername = None,
        registry_password: RegistryPassword = None,
        git_token: GitToken = None,
    ) -> str:
        """Pin the image published for sha in another environment (production: a pull request)."""
        call = Call(source, sha, config, registry_username, registry_password, git_token)
        _, outputs, _ = await run_stages(call, only=("promote",), environment=environment)
        return describe(outputs["promote"])
