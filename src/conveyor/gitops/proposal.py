"""What a promotion or rollback proposes: its branch, commit message and request text.

API:
    :class:`Proposal` (the result value, ``describe()`` for the CLI),
    ``promotion_branch(environment, app)`` (``conveyor/promote-<env>-<app>``),
    :class:`Intent`, ``commit_message(config, gitops, intent)``,
    ``diff_summary(before, after, path)`` and
    ``pull_request_text(config, gitops, intent, image=, previous=, relative=, diff=)``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from conveyor.config.models import Config, EnvironmentConfig, GitOpsConfig, Promotion
from conveyor.errors import ConfigError
from conveyor.gitops.forge import PullRequest
from conveyor.gitops.kustomization import ImageEdit, ImageEntry
from conveyor.secrets import Redactor

BRANCH_PREFIX = "conveyor/promote-"
_SAFE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Proposal:
    """What a promotion or rollback did.

    Attributes:
        action: ``promote`` or ``rollback``.
        environment: The environment changed (the target).
        image: The entry the environment pins once the proposal lands.
        previous: The entry it pinned before (``None``: none).
        promotion: The environment's path: a direct commit or a pull request.
        branch: The branch pushed to (the base branch for commits).
        commit: The commit pushed or reused, ``None`` when nothing changed.
        pull_request: The pull (merge) request opened or updated.
        opened: Whether the pull request is new (``False``: an open one was updated).
        forge: The forge's name ("GitHub", "GitLab") for pull requests.
    """

    action: Literal["promote", "rollback"]
    environment: str
    image: ImageEntry
    previous: ImageEntry | None
    promotion: Promotion
    branch: str
    commit: str | None
    pull_request: PullRequest | None = None
    opened: bool = False
    forge: str | None = None

    @property
    def changed(self) -> bool:
        """Whether anything was committed or proposed."""
        return self.commit is not None or self.pull_request is not None

    def describe(self) -> str:
        """The lines the CLI prints."""
        image = self.image.format()
        before = self.previous.format() if self.previous else "no image"
        if not self.changed:
            return f"{self.environment} already runs {image}; nothing to do"
        if self.pull_request is not None:
            kind, mark = ("merge request", "!") if self.forge == "GitLab" else ("pull request", "#")
            verb = "opened" if self.opened else "updated"
            return (
                f"{self.environment}: {verb} {kind} {mark}{self.pull_request.number} "
                f"{self.pull_request.url}\n"
                f"  branch: {self.branch}\n"
                f"  image: {before} -> {image}"
            )
        short = (self.commit or "")[:12]
        return (
            f"{self.environment}: committed {short} to {self.branch}\n  image: {before} -> {image}"
        )


def promotion_branch(environment: str, app: str) -> str:
    """The branch a pull-request promotion of ``app`` to ``environment`` is pushed to.

    Raises:
        ConfigError: the names cannot be part of a git branch name.
    """
    for what, value in (("environment", environment), ("app", app)):
        if not _SAFE_REF.match(value) or ".." in value or value.endswith((".", ".lock")):
            raise ConfigError(
                None,
                "gitops.environments" if what == "environment" else "app.name",
                f"{what} name {value!r} cannot be part of a git branch name",
                hint="use letters, digits, '.', '_' and '-'",
            )
    return f"{BRANCH_PREFIX}{environment}-{app}"


@dataclass(frozen=True)
class Intent:
    """What is proposed for which environment, and why (for messages and the request text)."""

    action: Literal["promote", "rollback"]
    environment: str
    target: EnvironmentConfig
    edit: ImageEdit
    why: str
    source: str | None


def commit_message(config: Config, gitops: GitOpsConfig, intent: Intent) -> str:
    """The commit message: ``gitops.message`` filled in, plus what and why.

    Raises:
        ConfigError: the template names an unknown field.
    """
    image = intent.edit.resolve(None).format()
    tag = intent.edit.new_tag or ""
    try:
        head = gitops.message.format(
            environment=intent.environment,
            app=config.app.name,
            short_sha=tag[:12] or (intent.edit.digest or "")[7:19],
            sha=tag,
            image=image,
        )
    except (KeyError, IndexError, ValueError) as error:
        raise ConfigError(
            None,
            "gitops.message",
            f"is not a valid template: {error!r}",
            hint="use {environment}, {app}, {short_sha}, {sha} and {image}",
        ) from error
    return f"{head}\n{intent.action}: {intent.why}\n"


def diff_summary(before: str, after: str, path: str) -> str:
    """A unified diff of one file with one line of context, for the request body."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
            n=1,
        )
    )


def pull_request_text(
    config: Config,
    gitops: GitOpsConfig,
    intent: Intent,
    *,
    image: ImageEntry,
    previous: ImageEntry | None,
    relative: str,
    diff: str,
) -> tuple[str, str]:
    """The title and Markdown body of the pull (merge) request."""
    app = config.app.name
    tag = image.new_tag or ""
    short = tag[:12] or (image.digest or "")[7:19]
    if intent.action == "promote":
        title = f"promote({intent.environment}): {app} {short} {intent.why}"
        lead = (
            f"Promotes **{app}** to `{intent.environment}`: the exact image "
            f"`{intent.source}` runs now."
        )
    else:
        title = f"rollback({intent.environment}): {app} {short}"
        lead = f"Rolls **{app}** in `{intent.environment}` back {intent.why}."
    source = f"`{tag}`" if tag else "unknown (the image has no tag)"
    if tag and _FULL_SHA.match(tag) and config.app.source_url:
        url = config.app.source_url.rstrip("/").removesuffix(".git")
        source += f" ([commit]({url}/commit/{tag}))"
    repo = Redactor()(gitops.repo)
    rows = [
        ("Image", f"`{image.format()}`"),
        ("Image digest", f"`{image.digest}`" if image.digest else "none"),
        ("Source commit", source),
        ("Replaces", f"`{previous.format()}`" if previous else "no image pinned"),
        ("Manifest", f"`{relative}` on `{gitops.branch}` of {repo}"),
    ]
    table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    body = (
        f"{lead}\n\n{table}\n\n"
        f"Changes:\n\n```diff\n{diff.rstrip()}\n```\n\n"
        "Merging this request is the deployment: Flux or Argo CD applies it from the "
        f"manifest repository. Opened by Conveyor from branch `{BRANCH_PREFIX}"
        f"{intent.environment}-{app}`; running the same command again updates this request.\n"
    )
    return title, body
