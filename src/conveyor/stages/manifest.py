"""The ``manifest`` and ``policy`` stages: pin the pushed digest in the manifest repo.

``manifest`` edits the environment's kustomization like ``kustomize edit set
image`` (name, newName, newTag, digest), checks with real kustomize that the
edited overlay renders the new image, commits and pushes race-safely.  Only
environments promoted by ``commit`` are written here; the others change through
``conveyor promote`` (a pull request).  ``policy`` renders the environment
at the pushed commit and checks every image against the policy.

Both render with the context's ``render`` (the host's kubectl by default) in a
worker thread, and clone into the context's ``workdir``.
"""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import anyio

from conveyor.config.models import Config, EnvironmentConfig, PolicyConfig, Promotion
from conveyor.errors import ConfigError, ManifestError
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.git import Git, GitAuth
from conveyor.gitops.kustomization import ImageEdit
from conveyor.gitops.renderer import Renderer, render
from conveyor.gitops.update import Author, update_manifest
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.policy.reference import parse
from conveyor.policy.rules import Violation, raise_for
from conveyor.policy.workloads import check_images
from conveyor.stages.context import DeliveryContext


def environment(config: Config) -> tuple[str, EnvironmentConfig]:
    if config.gitops is None:
        raise ConfigError(None, "gitops", "is not configured; the manifest stage needs it")
    name = config.stages.manifest.environment
    return name, config.gitops.environments[name]


def commit_message(ctx: DeliveryContext, env_name: str, image: str) -> str:
    assert ctx.config.gitops is not None
    return ctx.config.gitops.message.format(
        environment=env_name,
        app=ctx.config.app.name,
        sha=ctx.sha,
        short_sha=ctx.short_sha,
        image=image,
    )


def check_edited_overlay(
    root: Path,
    overlay: str,
    name: str,
    digest: str,
    policy: PolicyConfig,
    *,
    render: Renderer = render,
) -> None:
    """Before the commit: the edited overlay renders the new image and passes the policy.

    Args:
        root: The work tree of the manifest repository (after the edit).
        overlay: The environment's directory, relative to ``root``.
        name: The image name the overlay must render.
        digest: The digest it must render with.
        policy: The rules every rendered image must follow.
        render: Renders the overlay (synchronous; called where this is called).

    Raises:
        ManifestError: kustomize fails, or does not render ``name[:tag]@digest``.
        PolicyError: an image of the environment breaks the policy; nothing is committed.
    """
    rendered = render(root / overlay)
    pattern = re.compile(rf"image: ['\"]?{re.escape(name)}(:[\w][\w.-]*)?@{re.escape(digest)}\b")
    if not pattern.search(rendered):
        raise ManifestError(
            overlay,
            f"after the edit, kustomize does not render the image {name}@{digest}",
            hint="check that the environment's image_name matches the image used by the base",
        )
    raise_for(check_images(rendered, policy, source=overlay))


async def run_manifest(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Set the environment's image to the pushed digest; commit and push.

    Raises:
        ConfigError: the environment is promoted by pull request (use ``conveyor promote``).
        ManifestError, PushConflictError, PushRejectedError: the update could not land.
    """
    config = ctx.config
    assert config.gitops is not None
    env_name, env = environment(config)
    if env.promotion is not Promotion.COMMIT:
        raise ConfigError(
            None,
            f"gitops.environments.{env_name}.promotion",
            "is 'pull-request': this environment changes only through an approved pull request",
            hint=f"point stages.manifest.environment at a commit environment and run "
            f"'conveyor promote --to {env_name}'",
        )
    ref = parse(inputs["publish"]["image.ref"])
    name = config.image_name(env_name)
    edit = ImageEdit.pin(name, ref)
    kustomization = kustomization_file_in(env.path)
    assert ref.digest is not None

    def verify(root: Path) -> None:
        # update_manifest calls this in its worker thread: ctx.render may bridge to the loop
        check_edited_overlay(
            root,
            env.path,
            ref.name,
            ref.digest,  # type: ignore[arg-type]
            config.policy,
            render=ctx.render,
        )

    update = functools.partial(
        update_manifest,
        config.manifest_repo(),
        config.gitops.branch,
        [FileEdit(kustomization, edit)],
        message=commit_message(ctx, env_name, inputs["publish"]["image.ref"]),
        author=Author(config.gitops.author_name, config.gitops.author_email),
        auth=GitAuth(token=ctx.git_token) if ctx.git_token else None,
        max_attempts=config.gitops.max_push_attempts,
        verify=verify,
        workdir=ctx.workdir,
    )
    result = await anyio.to_thread.run_sync(update)
    return {
        "environment": env_name,
        "commit": result.commit or "",
        "changed": str(result.changed).lower(),
        "push.attempts": str(result.attempts),
        "previous": result.previous or "",
    }


def kustomization_file_in(path: str) -> str:
    """The kustomization's path in the repository; ``kustomization.yaml`` unless told."""
    return f"{path.rstrip('/')}/kustomization.yaml"


async def run_policy(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Render the environment at the branch tip and check every image against the policy.

    Raises:
        PolicyError: an image breaks a rule (mutable tag, registry, missing digest).
    """
    config = ctx.config
    assert config.gitops is not None
    branch = config.gitops.branch
    env_name, env = environment(config)
    auth = GitAuth(token=ctx.git_token) if ctx.git_token else None
    git = Git(config.manifest_repo(), auth=auth)

    def check() -> list[Violation]:
        with tempfile.TemporaryDirectory(prefix="conveyor-policy-", dir=ctx.workdir) as temp:
            root = Path(temp) / "repo"
            git.clone(root, branch, depth=1)
            return check_images(ctx.render(root / env.path), config.policy, source=env.path)

    violations = await anyio.to_thread.run_sync(check)
    raise_for(violations)
    return {"environment": env_name, "violations": "0"}
