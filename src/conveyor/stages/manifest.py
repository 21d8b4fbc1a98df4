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
from conveyor.errors import ConfigError, ManifestError, PolicyError, RenderUnavailableError
from conveyor.gitops.components import render_targets
from conveyor.gitops.environment import check_edited_files, environment_edits
from conveyor.gitops.git import Git, GitAuth
from conveyor.gitops.renderer import Renderer, helm_render, render
from conveyor.gitops.update import Author, UpdateResult, update_manifest
from conveyor.gitops.worktree import SparseTree
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.policy.reference import ImageReference, parse
from conveyor.policy.rules import Violation, check_reference, raise_for
from conveyor.policy.workloads import check_images
from conveyor.stages.context import DeliveryContext


def environment(config: Config) -> tuple[str, EnvironmentConfig]:
    if config.gitops is None:
        raise ConfigError(None, "gitops", "is not configured; the manifest stage needs it")
    name = config.stages.manifest.environment
    return name, config.gitops.environments[name]


def commit_message(config: Config, env_name: str, ref: ImageReference) -> str:
    """``gitops.message`` filled in; the source SHA is the image's tag."""
    assert config.gitops is not None
    sha = ref.tag or ""
    return config.gitops.message.format(
        environment=env_name,
        app=config.app.name,
        sha=sha,
        short_sha=sha[:12],
        image=ref.format(),
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
    pattern = re.compile(rf"image: ['\"]?{re.escape(name)}(:[\w][\w.-]*)?@{re.escape(digest)}\b")
    # a Component renders nothing alone: every kustomization including it is checked
    for target in render_targets(root, overlay):
        shown = target.relative_to(root).as_posix() or "."
        rendered = render(target)
        if not pattern.search(rendered):
            raise ManifestError(
                shown,
                f"after the edit, kustomize does not render the image {name}@{digest}",
                hint="check that the environment's image_name matches the image used by the base",
            )
        raise_for(check_images(rendered, policy, source=shown))


def pin_environment(
    config: Config,
    env_name: str,
    ref: ImageReference,
    *,
    auth: GitAuth | None,
    render: Renderer = render,
    workdir: Path | None = None,
    warnings: list[str] | None = None,
) -> UpdateResult:
    """Pin ``env_name`` to ``ref`` in one race-safe commit: the ``manifest`` stage's work.

    Every configured file is edited (kustomization, Flux setters, Helm values);
    before the commit the edited overlay must render ``ref`` and pass the
    policy (an overlay that cannot be rendered here is refused unless the
    environment sets ``allow_unrendered``: then ``ref`` is checked alone and
    a line goes to ``warnings``), and every other edited file must parse and
    hold an image that passes the policy.  Synchronous: call it from a worker
    thread.

    Raises:
        ConfigError: the environment changes only through pull requests.
        PolicyError: ``ref`` has no digest, or the environment breaks the policy.
        ManifestError, PushConflictError, PushRejectedError: the update could not land.
    """
    assert config.gitops is not None
    env = config.gitops.environments[env_name]
    if env.promotion is not Promotion.COMMIT:
        raise ConfigError(
            None,
            f"gitops.environments.{env_name}.promotion",
            "is 'pull-request': this environment changes only through an approved pull request",
            hint=f"use 'conveyor promote --to {env_name}' (a pull request), or point "
            "stages.manifest.environment at a commit environment",
        )
    digest = ref.digest
    if digest is None:
        raise PolicyError(ref.format(), "the digest is missing", hint="pass REF@sha256:<digest>")
    edits = environment_edits(config, env_name, ref)
    overlay_render = helm_render(render, env_name) if env.enable_helm else render

    def verify(root: Path) -> None:
        # update_manifest calls this in its worker thread: render may bridge to the loop
        if env.kustomize:
            try:
                check_edited_overlay(
                    root, env.path, ref.name, digest, config.policy, render=overlay_render
                )
            except RenderUnavailableError as error:
                if not env.allow_unrendered:
                    raise RenderUnavailableError(
                        env.path,  # as the repository names it, not the temporary clone
                        error.problem,
                        reason=error.reason,
                        hint=f"{error.hint}; or set gitops.environments.{env_name}."
                        "allow_unrendered = true to commit without rendering it",
                    ) from error
                raise_for(check_reference(ref, config.policy, where=env.path))
                if warnings is not None:
                    warnings.append(f"{env.path} was not rendered: {error.problem}")
        # the files kustomize does not render: they parse, and what they hold passes
        check_edited_files(root, edits, config.policy)

    return update_manifest(
        config.manifest_repo(),
        config.gitops.branch,
        edits,
        message=commit_message(config, env_name, ref),
        author=Author(config.gitops.author_name, config.gitops.author_email),
        auth=auth,
        max_attempts=config.gitops.max_push_attempts,
        verify=verify,
        workdir=workdir,
        # the clone checks out the overlay's kustomize closure and the edited files only
        sparse=[env.path] if env.kustomize else [],
    )


async def run_manifest(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Pin the environment to the pushed digest (see :func:`pin_environment`)."""
    env_name, _ = environment(ctx.config)
    warnings: list[str] = []
    update = functools.partial(
        pin_environment,
        ctx.config,
        env_name,
        parse(inputs["publish"]["image.ref"]),
        auth=GitAuth(token=ctx.git_token) if ctx.git_token else None,
        render=ctx.render,
        workdir=ctx.workdir,
        warnings=warnings,
    )
    result = await anyio.to_thread.run_sync(update)
    return {
        "unverified": "; ".join(warnings),
        "environment": env_name,
        "commit": result.commit or "",
        "changed": str(result.changed).lower(),
        "push.attempts": str(result.attempts),
        "previous": result.previous or "",
    }


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
    overlay_render = helm_render(ctx.render, env_name) if env.enable_helm else ctx.render

    def check() -> list[Violation]:
        with tempfile.TemporaryDirectory(prefix="conveyor-policy-", dir=ctx.workdir) as temp:
            root = Path(temp) / "repo"
            git.clone(root, branch, depth=1, checkout=False)
            tree = SparseTree(git, root, (), [env.path])
            tree.limit()  # only the overlay's kustomize closure

            def render_all() -> list[Violation]:
                # a Component is checked through every kustomization including it
                return [
                    violation
                    for target in render_targets(root, env.path)
                    for violation in check_images(
                        overlay_render(target),
                        config.policy,
                        source=target.relative_to(root).as_posix(),
                    )
                ]

            try:
                return render_all()
            except ManifestError:
                if not tree.widen():  # a layout the closure misses: every file, once
                    raise
                return render_all()

    violations = await anyio.to_thread.run_sync(check)
    raise_for(violations)
    return {"environment": env_name, "violations": "0"}
