"""Fixtures of the GitOps tests: copies of the manifest layouts in tests/resources."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitops_helpers import make_remote

from git_http import GitHttpRemote, serve_git_http

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """A fresh copy of tests/resources/manifests."""
    target = tmp_path / "manifests"
    shutil.copytree(RESOURCES, target)
    return target


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare manifest repository seeded with tests/resources/manifests."""
    return make_remote(tmp_path, RESOURCES)


@pytest.fixture
def http_remote(remote: Path) -> Iterator[GitHttpRemote]:
    """The ``remote`` repository served over HTTP with a token."""
    with serve_git_http(remote, "s3cr3t-token-value") as served:
        yield served
