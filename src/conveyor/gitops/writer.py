"""The one guarded writer of the manifest repository.

API (synchronous; call it from a worker thread)::

    write_environment(config, change, *, auth=None, render=render, workdir=None,
                      proposal_branch=None, ordering=None, warnings=None,
                      renders=None) -> UpdateResult

Every command that changes the manifest repository goes through here: the
``manifest`` stage, ``conveyor manifest update``, ``conveyor promote`` and
``conveyor rollback`` (their pull-request branches too).  Nothing is pushed
until every check has passed on the edited work tree::

    protected environment on the base branch?  ── refuse (before any clone)
    clone, sparse: the closure of every environment and the edited files
    edit ── paths inside the clone, no file written through a link
         ── a protected environment's files changed on the base branch? refuse
         ── render every environment the edit reaches (kustomize)
         ── the target renders the new image; the policy on every rendered image
         ── files kustomize does not render parse; the policy on what they hold
    commit ── race-safe push to the base branch (re-fetch, re-apply, re-check)
           └─ or, for a pull request, force-with-lease to the promotion branch

An environment that cannot be rendered here (a remote base offline, no helm)
is refused unless it sets ``allow_unrendered``; then the new image alone is
checked and a line goes to ``warnings``.

With a :class:`~conveyor.gitops.renders.RenderStore` the target
environment's render of the commit pushed to the base branch is kept there,
by that commit's tree: the ``policy`` stage checks it instead of cloning and
rendering the same tree again.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.config.models import Config
from conveyor.errors import ConfigError, ManifestError, PolicyError, RenderUnavailableError
from conveyor.gitops.closure import kustomize_dirs
from conveyor.gitops.components import render_targets
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.environment import check_edited_files
from conveyor.gitops.git import Git, GitAuth
from conveyor.gitops.renderer import Renderer, helm_render, render
from conveyor.gitops.renders import Rendered, RenderStore
from conveyor.gitops.update import Author, UpdateResult, update_manifest
from conveyor.policy.reference import ImageReference, parse
from conveyor.policy.rules import check_reference, raise_for
from conveyor.policy.workloads import FoundImage, check_found, workload_images

Publish = Callable[[Git, Path, str], str]


@dataclass(frozen=True)
class Change:
    """One change of an environment's images, in one commit.

    Attributes:
        environment: The environment changed (a key of ``gitops.environments``).
        edits: Every file edit, in one commit.
        images: The images the environment must render afterwards
            (``name[:tag][@digest]``, as the containers will run them): one,
            or each of several ``[images]`` pinned together.
        message: The commit message.
    """

    environment: str
    edits: Sequence[FileEdit]
    images: Sequence[ImageReference]
    message: str


def write_environment(
    config: Config,
    change: Change,
    *,
    auth: GitAuth | None = None,
    render: Renderer = render,
    workdir: Path | None = None,
    proposal_branch: tuple[str, Publish] | None = None,
    ordering: Callable[[str | None], bool] | None = None,
    warnings: list[str] | None = None,
    renders: RenderStore | None = None,
) -> UpdateResult:
    """Edit, render, check and only then commit and push (see the module docstring).

    Args:
        config: The configuration (``[gitops]`` is required).
        change: What to change.
        auth: Credentials for the manifest repository.
        render: Renders a directory (the host's kubectl by default).
        workdir: Where the temporary clone goes.
        proposal_branch: ``(branch, publish)`` for a pull request: the commit
            goes to that branch through ``publish``; ``None``: the base branch.
        ordering: Judges the value pinned at each tip (see
            :func:`~conveyor.gitops.update.update_manifest`).
        warnings: Receives a line for each environment not rendered.
        renders: Keeps the target environment's render of the commit pushed
            to the base branch (nothing for a pull request's branch).

    Raises:
        ConfigError: a protected environment would change on the base branch.
        PolicyError: an image of an affected environment breaks the policy.
        ManifestError: an affected environment does not render, the target
            does not render the new image, a path leaves the clone.
        PushConflictError, PushRejectedError, UnreachableError: the push failed.
    """
    gitops = config.gitops
    if gitops is None:
        raise ConfigError(None, "gitops", "is not configured; add a [gitops] section")
    target = gitops.environments[change.environment]
    on_base = proposal_branch is None
    if on_base and target.is_protected(change.environment):
        raise ConfigError(
            None,
            f"gitops.environments.{change.environment}",
            "is protected: its files change only through a pull request, "
            f"never by a commit on {gitops.branch!r}",
            hint=f"conveyor promote --to {change.environment} (opens a pull request)",
        )
    git = Git(config.manifest_repo(), auth=auth)
    kustomized = {name: env for name, env in gitops.environments.items() if env.kustomize}
    # the target's renders at the last verify: the work tree that is committed next
    last: list[tuple[Rendered, ...] | None] = [None]

    def verify(root: Path) -> None:
        last[0] = None
        edited = {posixpath.dirname(edit.path) for edit in change.edits}
        reached = {
            name: kustomize_dirs(git, root, env.path)
            for name, env in kustomized.items()
            if name != change.environment
        }
        affected = [name for name, dirs in reached.items() if dirs & edited]
        if on_base:
            _refuse_protected(config, change.environment, affected)
        if target.kustomize:
            last[0] = _check_environment(
                config, change.environment, root, render, warnings, images=change.images
            )
        for name in affected:
            _check_environment(config, name, root, render, warnings, images=())
        # the files kustomize does not render: they parse, and what they hold passes
        check_edited_files(root, list(change.edits), config.policy)

    branch, publish = proposal_branch if proposal_branch is not None else (None, None)
    result = update_manifest(
        config.manifest_repo(),
        gitops.branch,
        change.edits,
        message=change.message,
        author=Author(gitops.author_name, gitops.author_email),
        auth=auth,
        max_attempts=gitops.max_push_attempts,
        push_branch=branch,
        verify=verify,
        workdir=workdir,
        # every environment's kustomize closure: what an edit may reach
        sparse=[env.path for env in kustomized.values()],
        ordering=ordering,
        publish=publish,
    )
    kept = last[0]
    if renders is not None and kept is not None and result.commit and result.tree:
        renders.record(result.commit, result.tree, target.path, kept)
    return result


def _refuse_protected(config: Config, environment: str, affected: list[str]) -> None:
    assert config.gitops is not None
    for name in affected:
        if config.gitops.environments[name].is_protected(name):
            raise ConfigError(
                None,
                f"gitops.environments.{environment}",
                f"changes files that protected environment {name!r} renders; a protected "
                f"environment's files change only through a pull request, never by a commit "
                f"on {config.gitops.branch!r}",
                hint=f"keep {environment}'s files (path, flux_setters, helm_values) out of "
                f"{name}'s overlay and bases",
            )


def _check_environment(
    config: Config,
    name: str,
    root: Path,
    render: Renderer,
    warnings: list[str] | None,
    *,
    images: Sequence[ImageReference],
) -> tuple[Rendered, ...] | None:
    """``name``'s overlay renders (every new image in ``images``) and passes the policy.

    Returns:
        What was rendered, or ``None`` when it could not be (``allow_unrendered``).
    """
    assert config.gitops is not None
    env = config.gitops.environments[name]
    overlay_render = helm_render(render, name) if env.enable_helm else render
    done: list[Rendered] = []
    try:
        # a Component renders nothing alone: every kustomization including it is checked
        for directory in render_targets(root, env.path):
            shown = directory.relative_to(root).as_posix() or "."
            try:
                rendered = overlay_render(directory)
            except RenderUnavailableError:
                raise
            except ManifestError as error:
                raise ManifestError(
                    shown,
                    f"after the edit, kustomize cannot build environment {name!r}: "
                    f"{_in_repository(error.problem, root)}; nothing was pushed",
                    hint=error.hint,
                ) from error
            # the rendered YAML is read once, for the new images and for the policy
            found = workload_images(rendered, source=shown)
            for image in images:
                if not _renders(found, image):
                    raise ManifestError(
                        shown,
                        f"after the edit, kustomize does not render the image {image.format()}",
                        hint="check that the environment's image_name matches the image used "
                        "by the base",
                    )
            raise_for(check_found(found, config.policy, source=shown))
            done.append(Rendered(shown, rendered, tuple(found)))
    except RenderUnavailableError as error:
        _unrendered(config, name, error, images=images, warnings=warnings)
        return None
    return tuple(done)


def _unrendered(
    config: Config,
    name: str,
    error: RenderUnavailableError,
    *,
    images: Sequence[ImageReference],
    warnings: list[str] | None,
) -> None:
    assert config.gitops is not None
    env = config.gitops.environments[name]
    if not env.allow_unrendered:
        raise RenderUnavailableError(
            env.path,  # as the repository names it, not the temporary clone
            error.problem,
            reason=error.reason,
            hint=f"{error.hint}; or set gitops.environments.{name}.allow_unrendered = true "
            "to commit without rendering it",
        ) from error
    for image in images:
        raise_for(check_reference(image, config.policy, where=env.path))
    if warnings is not None:
        warnings.append(f"{env.path} was not rendered: {error.problem}")


def _in_repository(problem: str, root: Path) -> str:
    """kustomize's message with the temporary clone's paths made repository paths."""
    for prefix in {f"{root.resolve()}/", f"{root}/"}:
        problem = problem.replace(prefix, "")
    return problem.removeprefix("kustomize could not build it: ")


def _renders(images: Sequence[FoundImage], image: ImageReference) -> bool:
    """Whether one of the rendered ``images`` is ``image`` (name, and its tag/digest if set)."""
    for found in images:
        try:
            ref = parse(found.image)
        except PolicyError:
            continue
        if ref.name != image.name:
            continue
        if image.tag is not None and ref.tag != image.tag:
            continue
        if image.digest is not None and ref.digest != image.digest:
            continue
        return True
    return False


__all__ = ["Change", "Publish", "write_environment"]
