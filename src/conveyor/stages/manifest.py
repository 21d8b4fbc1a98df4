"""The ``manifest`` and ``policy`` stages: pin the pushed digest in the manifest repo.

``manifest`` edits the environment's kustomization like ``kustomize edit set
image`` (name, newName, newTag, digest) and writes through the one guarded
writer (:mod:`conveyor.gitops.writer`: render, policy, then a race-safe
push).  It never moves an environment to an older source commit than the
one it pins (:func:`never_older`).  Only environments promoted by ``commit``
are written here; the others change through ``conveyor promote`` (a pull
request).  ``policy`` checks every image of the environment at the branch
tip against the policy: when the tip is the commit ``manifest`` pushed in
this run, it checks the render ``manifest`` made of that commit's tree (the
context's :class:`~conveyor.gitops.renders.RenderStore`); otherwise it
clones the tip and renders it.

Both render with the context's ``render`` (the host's kubectl by default) in a
worker thread, and clone into the context's ``workdir``.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from conveyor.config.models import Config, EnvironmentConfig, Promotion
from conveyor.errors import ConfigError, GitOpsError, ManifestError, PolicyError
from conveyor.gitops.ancestry import Comparison, Order, compare, pinned_commit
from conveyor.gitops.components import render_targets
from conveyor.gitops.environment import environment_edits
from conveyor.gitops.git import Git, GitAuth
from conveyor.gitops.renderer import Renderer, helm_render, render
from conveyor.gitops.renders import RenderStore
from conveyor.gitops.update import UpdateResult
from conveyor.gitops.worktree import SparseTree
from conveyor.gitops.writer import Change, write_environment
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.policy.reference import ImageReference, parse
from conveyor.policy.rules import Violation, raise_for
from conveyor.policy.workloads import check_found, check_images
from conveyor.stages.context import DeliveryContext


def environment(config: Config) -> tuple[str, EnvironmentConfig]:
    if config.gitops is None:
        raise ConfigError(None, "gitops", "is not configured; the manifest stage needs it")
    name = config.stages.manifest.environment
    return name, config.gitops.environments[name]


Pin = tuple[str, ImageReference]
"""One image to pin: the manifests' ``images[].name`` and the pushed reference."""


def commit_message(config: Config, env_name: str, refs: Sequence[ImageReference]) -> str:
    """``gitops.message`` filled in; the source SHA is the (first) image's tag.

    ``{image}`` is every reference, joined with ``, `` when several images
    are pinned in one commit.
    """
    assert config.gitops is not None
    sha = refs[0].tag or ""
    return config.gitops.message.format(
        environment=env_name,
        app=config.app.name,
        sha=sha,
        short_sha=sha[:12],
        image=", ".join(ref.format() for ref in refs),
    )


def image_for(config: Config, env_name: str, ref: ImageReference) -> Pin:
    """What ``conveyor manifest update ENV REF`` pins: the image whose repository ``ref`` names.

    The ``[app]`` shorthand has one image, whatever ``ref`` names.

    Raises:
        ConfigError: with ``[images]``, no image publishes to ``ref``'s repository.
    """
    specs = config.image_specs()
    if not config.images:
        return specs[0].image_name(env_name), ref
    for spec in specs:
        if ref.name == f"{config.registry.host}/{spec.repository}":
            return spec.image_name(env_name), ref
    known = ", ".join(f"{config.registry.host}/{spec.repository}" for spec in specs)
    raise ConfigError(
        config.root / "conveyor.toml",
        "images",
        f"no image publishes to {ref.name!r}",
        hint=f"give the reference of one of the images: {known}",
    )


def pin_environment(
    config: Config,
    env_name: str,
    pins: Sequence[Pin],
    *,
    auth: GitAuth | None,
    render: Renderer = render,
    workdir: Path | None = None,
    warnings: list[str] | None = None,
    ordering: Callable[[str | None], bool] | None = None,
    renders: RenderStore | None = None,
) -> UpdateResult:
    """Pin ``env_name`` to every ``(name, ref)`` in one race-safe commit: the ``manifest`` stage.

    Several images (``[images]``) land together in one commit, or none does.
    Every configured file is edited (kustomization, Flux setters, Helm values)
    and written through the one guarded writer
    (:func:`~conveyor.gitops.writer.write_environment`): the edited overlay
    must render ``ref``, every environment the edit reaches must render and
    pass the policy, and the other edited files must parse and hold an image
    that passes it.  Synchronous: call it from a worker thread.

    Args:
        ordering: Judges the value pinned at each tip (the stage passes the
            source repository's ancestry: never an older commit).
        renders: Keeps the environment's render of the pushed commit (for
            the policy stage).

    Raises:
        ConfigError: the environment changes only through pull requests.
        PolicyError: a ``ref`` has no digest, or the environment breaks the policy.
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
    for _, ref in pins:
        if ref.digest is None:
            raise PolicyError(
                ref.format(), "the digest is missing", hint="pass REF@sha256:<digest>"
            )
    refs = [ref for _, ref in pins]
    change = Change(
        env_name,
        [e for name, ref in pins for e in environment_edits(config, env_name, ref, name=name)],
        refs,
        commit_message(config, env_name, refs),
    )
    return write_environment(
        config,
        change,
        auth=auth,
        render=render,
        workdir=workdir,
        ordering=ordering,
        warnings=warnings,
        renders=renders,
    )


def never_older(config: Config, ours: str, notes: list[str]) -> Callable[[str | None], bool]:
    """The stage's ordering: apply over an older pinned commit, stop at a newer one.

    The pinned image's tag is its source commit; the source repository
    (``app.source``) decides which is newer (see :mod:`conveyor.gitops.ancestry`).

    Raises (from the returned function):
        GitOpsError: the order cannot be decided and ``stages.manifest.allow_unordered``
            is not set.
    """
    source = config.resolve(config.app.source)
    decided: dict[str, Comparison] = {}

    def judge(value: str | None) -> bool:
        pinned = pinned_commit(value)
        if pinned is None:
            return True  # nothing pinned yet, or not a source commit (a hand-set tag)
        if pinned not in decided:
            decided[pinned] = compare(source, ours, pinned)
        found = decided[pinned]
        if found.order is Order.OLDER:
            return False
        if found.order is Order.UNKNOWN:
            if not config.stages.manifest.allow_unordered:
                raise GitOpsError(
                    f"cannot tell whether {ours[:12]} is newer than {pinned[:12]}, which the "
                    f"environment pins: {found.reason}; nothing was pushed",
                    hint="fetch the source's full history (e.g. fetch-depth: 0), or set "
                    "stages.manifest.allow_unordered = true to commit without knowing; "
                    "'conveyor rollback' is the way back to an older image",
                )
            notes.append(f"order not decided ({found.reason}); committed anyway")
        return True

    return judge


async def run_manifest(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Pin the environment to the pushed digests (see :func:`pin_environment`).

    Every image's ``publish`` (``publish-<name>`` with ``[images]``) is pinned
    in one commit; ``images`` lists the references pinned.  An image left
    out because nothing changed under its ``paths`` keeps its pin.

    An environment that already pins a newer source commit is left alone: the
    stage succeeds with ``superseded`` naming what is pinned.
    """
    env_name, _ = environment(ctx.config)
    warnings: list[str] = []
    notes: list[str] = []
    # an image whose paths did not change was not published: its pin stays as it is
    pins = [
        (spec.image_name(env_name), parse(inputs[spec.stage("publish")]["image.ref"]))
        for spec in ctx.config.image_specs()
        if spec.stage("publish") in inputs
    ]
    ref = pins[0][1]
    update = functools.partial(
        pin_environment,
        ctx.config,
        env_name,
        pins,
        auth=GitAuth(token=ctx.git_token) if ctx.git_token else None,
        render=ctx.render,
        workdir=ctx.workdir,
        warnings=warnings,
        ordering=never_older(ctx.config, ref.tag or ctx.sha, notes),
        renders=ctx.renders,
    )
    result = await anyio.to_thread.run_sync(update)
    superseded = (
        f"newer already pinned: {result.superseded}" if result.superseded is not None else ""
    )
    # the note is what the run's table shows for the stage
    note = {"note": superseded} if superseded else {}
    return {
        **note,
        "unverified": "; ".join(warnings),
        "environment": env_name,
        "commit": result.commit or "",
        "changed": str(result.changed).lower(),
        "push.attempts": str(result.attempts),
        "previous": result.previous or "",
        "superseded": superseded,
        "ordering": "; ".join(notes),
        "images": ", ".join(ref.format() for _, ref in pins),
    }


async def run_policy(ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
    """Check every image the environment renders at the branch tip against the policy.

    The tip is asked of the remote (``git ls-remote``).  When it is the
    commit this run's manifest stage pushed, the render that stage made of
    that commit's tree is checked; otherwise the tip is cloned (its kustomize
    closure only) and rendered.  ``rendered`` says which.

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

    def reused() -> tuple[list[Violation], str] | None:
        tip = git.tip(branch)
        kept = None if tip is None else ctx.renders.find(tip, env.path)
        if kept is None:
            return None
        # the policy's rules on every image of that render (read from it once, by the writer)
        violations = [
            violation
            for rendered in kept.renders
            for violation in check_found(rendered.images, config.policy, source=rendered.source)
        ]
        how = f"by the manifest stage: tree {kept.tree[:12]} of commit {kept.commit[:12]}"
        return violations, how

    def cloned() -> list[Violation]:
        with tempfile.TemporaryDirectory(prefix="conveyor-policy-", dir=ctx.workdir) as temp:
            root = Path(temp) / "repo"
            git.clone(root, branch, depth=1, checkout=False)
            tree = SparseTree(git, root, (), [env.path])
            with git.reading(root):  # one cat-file process for the closure's levels
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

    def check() -> tuple[list[Violation], str]:
        return reused() or (cloned(), "from a clone of the branch tip")

    violations, how = await anyio.to_thread.run_sync(check)
    raise_for(violations)
    return {"environment": env_name, "violations": "0", "rendered": how}
