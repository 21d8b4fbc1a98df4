"""Fixtures of the GitOps tests: copies of the manifest layouts in tests/resources."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """A fresh copy of tests/resources/manifests."""
    target = tmp_path / "manifests"
    shutil.copytree(RESOURCES, target)
    return target
