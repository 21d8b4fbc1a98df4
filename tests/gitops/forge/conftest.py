"""Fixtures of the forge tests: the GitHub and GitLab API doubles on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from forge_doubles import TOKEN, GitHubApiDouble, GitLabApiDouble


@pytest.fixture
def github_double() -> Iterator[GitHubApiDouble]:
    """A GitHub API double for ``acme/manifests`` accepting :data:`TOKEN`."""
    with GitHubApiDouble("acme", "manifests", TOKEN) as double:
        yield double


@pytest.fixture
def gitlab_double() -> Iterator[GitLabApiDouble]:
    """A GitLab API double for ``acme/deploy/manifests`` accepting :data:`TOKEN`."""
    with GitLabApiDouble("acme/deploy/manifests", TOKEN) as double:
        yield double
