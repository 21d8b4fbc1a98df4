"""Pull (merge) requests on GitHub and GitLab, behind one :class:`Forge` port.

:func:`forge_from_config` builds the adapter ``[gitops.forge]`` names, with
the token read from the environment variable the configuration names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from conveyor.config.models import GitOpsConfig
from conveyor.errors import ConfigError
from conveyor.gitops.forge.github import GitHubForge
from conveyor.gitops.forge.gitlab import GitLabForge
from conveyor.gitops.forge.port import Forge, PullRequest
from conveyor.secrets import Secret

__all__ = ["Forge", "GitHubForge", "GitLabForge", "PullRequest", "forge_from_config"]


def forge_from_config(
    gitops: GitOpsConfig,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Forge:
    """The forge adapter ``gitops.forge`` describes, holding its token.

    Args:
        gitops: The ``[gitops]`` configuration.
        env: Where to read the token from (default: ``os.environ``).
        transport: An httpx transport (only tests pass one).

    Raises:
        ConfigError: ``gitops.forge`` is missing, names no token variable, or
            the variable is not set.
    """
    forge = gitops.forge
    if forge is None:
        raise ConfigError(
            None,
            "gitops.forge",
            "is not set, but a pull-request promotion needs a forge",
            hint='add [gitops.forge] with kind = "github" or "gitlab" and project = "owner/repo"',
        )
    token_env = forge.token_env or gitops.token_env
    if token_env is None:
        raise ConfigError(
            None,
            "gitops.forge.token_env",
            "names no environment variable holding the forge API token",
            hint='set token_env = "GITHUB_TOKEN" (or gitops.token_env)',
        )
    token = Secret.from_env(token_env, os.environ if env is None else env)
    if forge.kind == "github":
        return GitHubForge(forge.project, token, api_url=forge.base_url, transport=transport)
    return GitLabForge(forge.project, token, api_url=forge.base_url, transport=transport)
