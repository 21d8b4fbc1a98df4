"""Promotion and rollback: move an exact, already-running image between environments.

API (synchronous, like :mod:`.update`)::

    promote(config, source_env, target_env, forge=None, *, env=None, workdir=None) -> Proposal
    rollback(config, environment, to_digest=None, steps=1, *, forge=None, env=None,
             workdir=None) -> Proposal

``promote`` reads the image (``newName``, ``newTag``, ``digest``) the source
environment pins on the manifest repository's base branch and proposes it for
the target environment through the target's path: ``commit`` goes through
:func:`~conveyor.gitops.update.update_manifest` (race-safe, never forced);
``pull-request`` pushes the edit to the branch ``conveyor/promote-<env>-<app>``
and opens a pull (merge) request, or updates the one already open.  Only that
branch is ever force-pushed (with a lease), the base branch never; a
protected environment (``production``/``prod`` or ``protected = true``)
promotes only by pull request.  Both paths write through the one guarded
writer (:func:`~conveyor.gitops.writer.write_environment`): the edited
environment renders the image, every rendered image passes the policy,
before anything is pushed.  ``rollback`` picks an earlier image from the environment
file's history (``steps`` changes back, or the one with ``to_digest``) and
proposes it the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from conveyor.config.models import Config, EnvironmentConfig, GitOpsConfig, Promotion
from conveyor.errors import ConfigError, GitOpsError
from conveyor.gitops.closure import read_kustomization
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.environment import companion_edits, reference_of
from conveyor.gitops.forge import Forge, forge_from_config
from conveyor.gitops.git import Git, GitAuth
from conveyor.gitops.kustomization import (
    ImageEdit,
    find_image,
    set_image,
)
from conveyor.gitops.proposal import (
    BRANCH_PREFIX,
    Intent,
    Proposal,
    commit_message,
    diff_summary,
    promotion_branch,
    pull_request_text,
)
from conveyor.gitops.update import image_history, read_image
from conveyor.gitops.writer import Change, write_environment

DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
"""An image digest (``sha256:<hex>``), as ``rollback --to`` takes it."""


def promote(
    config: Config,
    source_env: str,
    target_env: str,
    forge: Forge | None = None,
    *,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
) -> Proposal:
    """Propose the image ``source_env`` runs for ``target_env``.

    Args:
        config: The configuration (``[gitops]`` is required).
        source_env: The environment whose pinned image is promoted.
        target_env: The environment to change.
        forge: The forge for pull requests (default: built from ``gitops.forge``).
        env: Where tokens are read from (default: ``os.environ``).
        workdir: Where temporary clones go (default: the system's temp directory).

    Returns:
        What was committed or proposed (nothing when the target already runs it).

    Raises:
        ConfigError: no ``[gitops]``, an unknown environment, or forge settings missing.
        GitOpsError: source equals target, the source pins no image (or no
            digest), production configured for direct commits; or the update failed.
        ForgeError: the forge API refused a call.
        UnreachableError: the manifest repository or forge did not answer.
    """
    gitops = _gitops(config)
    source = _environment(gitops, source_env, "--from")
    target = _environment(gitops, target_env, "--to")
    if source_env == target_env:
        raise GitOpsError(
            f"cannot promote environment {source_env!r} to itself",
            hint="pass a different environment to --to (e.g. --from staging --to production)",
        )
    environ = os.environ if env is None else env
    auth = GitAuth.from_env(gitops.token_env, environ)
    source_name = config.image_name(source_env)
    target_name = config.image_name(target_env)
    entry = read_image(config.manifest_repo(), gitops.branch, source.path, source_name, auth=auth)
    if entry is None or not entry.digest:
        pinned = "pins no image" if entry is None else f"pins {entry.format()} without a digest"
        raise GitOpsError(
            f"environment {source_env!r} {pinned} named {source_name!r} in {source.path} "
            f"(branch {gitops.branch!r}); there is nothing exact to promote",
            hint=f"deploy to {source_env} first (conveyor run), then promote",
        )
    new_name = entry.new_name or (None if entry.name == target_name else entry.name)
    edit = ImageEdit(target_name, new_name, entry.new_tag, entry.digest)
    return _propose(
        config,
        Intent("promote", target_env, target, edit, f"from {source_env}", source_env),
        forge=forge,
        auth=auth,
        environ=environ,
        workdir=workdir,
    )


def rollback(
    config: Config,
    environment: str,
    to_digest: str | None = None,
    steps: int = 1,
    *,
    forge: Forge | None = None,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
) -> Proposal:
    """Propose an earlier image for ``environment``, through its normal path.

    Args:
        config: The configuration (``[gitops]`` is required).
        environment: The environment to roll back.
        to_digest: The digest to go back to (it must be in the file's history).
        steps: Without ``to_digest``: how many image changes to go back.
        forge: The forge for pull requests (default: built from ``gitops.forge``).
        env: Where tokens are read from (default: ``os.environ``).
        workdir: Where temporary clones go.

    Raises:
        ConfigError: no ``[gitops]``, an unknown environment, ``steps`` below 1.
        GitOpsError: the history holds no such earlier image.
    """
    gitops = _gitops(config)
    target = _environment(gitops, environment, "ENVIRONMENT")
    if steps < 1:
        raise ConfigError(None, "--steps", f"must be 1 or more (got {steps})")
    if to_digest is not None and not DIGEST.match(to_digest):
        raise ConfigError(
            None, "--to", f"{to_digest!r} is not a digest", hint="expected sha256:<64 hex digits>"
        )
    environ = os.environ if env is None else env
    auth = GitAuth.from_env(gitops.token_env, environ)
    name = config.image_name(environment)
    limit = 50 if to_digest else steps + 1
    history = image_history(
        config.manifest_repo(), gitops.branch, target.path, name, auth=auth, limit=limit
    )
    if not history or history[0].image is None:
        raise GitOpsError(
            f"environment {environment!r} pins no image named {name!r} in {target.path}; "
            "there is nothing to roll back",
            hint="check gitops.environments and the image_name",
        )
    current = history[0].image
    if to_digest is not None:
        if current.digest == to_digest:
            raise GitOpsError(f"environment {environment!r} already runs {current.format()}")
        chosen = next(
            (h for h in history[1:] if h.image is not None and h.image.digest == to_digest), None
        )
        if chosen is None:
            # an environment that went back and forth ran a digest more than once: list it once
            digests = (h.image.digest for h in history[1:] if h.image is not None)
            known = ", ".join(list(dict.fromkeys(d[:19] for d in digests if d))[:5])
            raise GitOpsError(
                f"{to_digest} is not among the images {environment!r} ran "
                f"(last {len(history)} changes of {target.path})",
                hint=f"earlier digests: {known}"
                if known
                else "the environment has no earlier image",
            )
    else:
        if len(history) <= steps:
            raise GitOpsError(
                f"environment {environment!r} has only {len(history) - 1} earlier image(s) in "
                f"the history of {target.path}; cannot go back {steps}",
                hint="pass a smaller --steps, or --to DIGEST",
            )
        chosen = history[steps]
    if chosen.image is None:
        raise GitOpsError(
            f"at commit {chosen.commit[:12]} environment {environment!r} pinned no image "
            f"named {name!r}; there is nothing to roll back to",
            hint="pass --to DIGEST of an image it ran",
        )
    was = chosen.image
    edit = ImageEdit(name, was.new_name, was.new_tag, was.digest)
    why = f"to the image of {chosen.commit[:12]} ({chosen.date})"
    return _propose(
        config,
        Intent("rollback", environment, target, edit, why, None),
        forge=forge,
        auth=auth,
        environ=environ,
        workdir=workdir,
    )


def _gitops(config: Config) -> GitOpsConfig:
    if config.gitops is None:
        raise ConfigError(
            config.root / "conveyor.toml",
            "gitops",
            "section is missing; promotion needs the manifest repository",
            hint='add [gitops] with repo = "..." and [gitops.environments.NAME] tables',
        )
    if config.images:
        # one image per proposal today; several would need one pull request for all
        raise ConfigError(
            config.root / "conveyor.toml",
            "images",
            "promote and rollback move the one [app] image; with [images] they are not "
            "supported yet",
            hint="promote by editing the environment's kustomization in a pull request "
            "(conveyor manifest set-image DIR NAME=REF@DIGEST for each image)",
        )
    return config.gitops


def _environment(gitops: GitOpsConfig, name: str, option: str) -> EnvironmentConfig:
    try:
        return gitops.environments[name]
    except KeyError:
        known = ", ".join(sorted(gitops.environments)) or "none defined"
        raise ConfigError(
            None,
            option,
            f"no environment named {name!r} in gitops.environments",
            hint=f"known environments: {known}",
        ) from None


def _propose(
    config: Config,
    intent: Intent,
    *,
    forge: Forge | None,
    auth: GitAuth,
    environ: Mapping[str, str],
    workdir: Path | None,
) -> Proposal:
    gitops = _gitops(config)
    relative, text = _read_target(config, intent, auth, workdir)
    previous = find_image(text, intent.edit.name, relative)
    new_text = set_image(text, intent.edit, path=relative)
    image = intent.edit.resolve(previous)
    # the environment's Flux setter and Helm values files follow the kustomization
    companions = companion_edits(config, intent.environment, reference_of(image))
    change = Change(
        intent.environment,
        [FileEdit(relative, intent.edit), *companions],
        [reference_of(image)],
        commit_message(config, gitops, intent),
    )
    base = Proposal(
        intent.action,
        intent.environment,
        image,
        previous,
        intent.target.promotion,
        gitops.branch,
        None,
    )
    if new_text == text:
        return base
    if intent.target.promotion is Promotion.COMMIT:
        # the one guarded writer: render, policy, then the race-safe push
        result = write_environment(config, change, auth=auth, workdir=workdir)
        return replace(base, branch=result.branch, commit=result.commit)
    branch = promotion_branch(intent.environment, config.app.name)
    diff = diff_summary(text, new_text, relative)
    title, body = pull_request_text(
        config, gitops, intent, image=image, previous=previous, relative=relative, diff=diff
    )
    own = forge is None
    active = forge_from_config(gitops, env=environ) if forge is None else forge
    try:
        # asked first: a refused token or an unreachable forge stops before any push
        found = active.find_open(branch, gitops.branch)

        def publish(git: Git, root: Path, commit: str) -> str:
            return _push_promotion_branch(git, root, branch, gitops.branch, commit)

        # the same checks as a commit; only the branch pushed to differs
        result = write_environment(
            config, change, auth=auth, workdir=workdir, proposal_branch=(branch, publish)
        )
        if result.commit is None:
            return base
        if found is None:
            pull = active.open(branch, gitops.branch, title, body)
        else:
            pull = active.update(found.number, title, body)
        if gitops.forge is not None:
            active.add_labels(pull.number, gitops.forge.labels)
            active.request_reviewers(pull.number, gitops.forge.reviewers)
    finally:
        if own:
            active.close()
    return replace(
        base,
        branch=branch,
        commit=result.commit,
        pull_request=pull,
        opened=found is None,
        forge=active.name,
    )


def _read_target(
    config: Config, intent: Intent, auth: GitAuth, workdir: Path | None
) -> tuple[str, str]:
    """The target's kustomization file and text on the base branch (no work tree written)."""
    gitops = _gitops(config)
    git = Git(config.manifest_repo(), auth=auth)
    temp = Path(tempfile.mkdtemp(prefix="conveyor-promote-", dir=workdir))
    try:
        root = temp / "repo"
        git.clone(root, gitops.branch, depth=1, checkout=False)
        return read_kustomization(git, root, intent.target.path)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _push_promotion_branch(git: Git, root: Path, branch: str, base: str, commit: str) -> str:
    """Force-push ``HEAD`` to the promotion ``branch`` (with a lease); the base branch never.

    Returns the commit the branch holds: the existing one when its tree is already ours.
    """
    if not branch.startswith(BRANCH_PREFIX) or branch == base:
        raise GitOpsError(
            f"refusing to force-push {branch!r}: only {BRANCH_PREFIX}* branches are rewritten",
            hint="this is a bug in Conveyor; please report it",
        )
    listed = git.run(["ls-remote", "--heads", "origin", f"refs/heads/{branch}"], cwd=root)
    existing = listed.stdout.split("\t", 1)[0].strip() if listed.stdout.strip() else ""
    if existing:
        git.run(
            ["fetch", "--quiet", "--no-tags", "--depth=1", "origin", f"refs/heads/{branch}"],
            cwd=root,
            branch=branch,
        )
        trees = git.run(["rev-parse", "FETCH_HEAD^{tree}", "HEAD^{tree}"], cwd=root).stdout.split()
        if trees[0] == trees[1]:
            return existing
    git.run(
        [
            "push",
            "--quiet",
            f"--force-with-lease=refs/heads/{branch}:{existing}",
            "origin",
            f"HEAD:refs/heads/{branch}",
        ],
        cwd=root,
        branch=branch,
    )
    return commit


__all__ = ["BRANCH_PREFIX", "Proposal", "promote", "promotion_branch", "rollback"]
