"""forge_from_config: the adapter and token ``[gitops.forge]`` names."""

from __future__ import annotations

import pytest

from conveyor.config.models import GitOpsConfig
from conveyor.errors import ConfigError
from conveyor.gitops.forge import GitHubForge, GitLabForge, forge_from_config


def _gitops(**forge: object) -> GitOpsConfig:
    return GitOpsConfig.model_validate({"repo": "https://example.invalid/m.git", "forge": forge})


def test_github_with_its_own_token_variable() -> None:
    forge = forge_from_config(
        _gitops(kind="github", project="acme/manifests", token_env="FORGE_TOKEN"),
        env={"FORGE_TOKEN": "t0ken"},
    )
    assert isinstance(forge, GitHubForge)
    assert (forge.owner, forge.repo) == ("acme", "manifests")


def test_gitlab_falls_back_to_the_gitops_token() -> None:
    gitops = GitOpsConfig.model_validate(
        {
            "repo": "https://example.invalid/m.git",
            "token_env": "GIT_TOKEN",
            "forge": {"kind": "gitlab", "project": "acme/manifests"},
        }
    )
    forge = forge_from_config(gitops, env={"GIT_TOKEN": "t0ken"})
    assert isinstance(forge, GitLabForge)
    assert forge.project == "acme/manifests"


def test_no_forge_section() -> None:
    gitops = GitOpsConfig(repo="https://example.invalid/m.git")
    with pytest.raises(ConfigError) as caught:
        forge_from_config(gitops, env={})
    assert str(caught.value) == (
        "configuration: gitops.forge: is not set, but a pull-request promotion needs a forge\n"
        '  hint: add [gitops.forge] with kind = "github" or "gitlab" and project = "owner/repo"'
    )


def test_no_token_variable_named() -> None:
    with pytest.raises(ConfigError, match="names no environment variable"):
        forge_from_config(_gitops(kind="github", project="acme/manifests"), env={})


def test_token_variable_not_set() -> None:
    with pytest.raises(ConfigError) as caught:
        forge_from_config(
            _gitops(kind="github", project="acme/manifests", token_env="FORGE_TOKEN"), env={}
        )
    assert caught.value.field == "FORGE_TOKEN"
    assert caught.value.problem == "secret environment variable is not set"


def test_github_project_must_be_owner_slash_repo() -> None:
    with pytest.raises(ValueError, match="must be 'owner/repo' for GitHub"):
        _gitops(kind="github", project="manifests")
