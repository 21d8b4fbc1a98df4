"""``conveyor init``: conveyor.toml and a CI caller file, generated from the repository."""

from __future__ import annotations

from conveyor.scaffold.generator import SUPPORTED_CI, PlannedFile, check_ci, plan, scaffold
from conveyor.scaffold.repository import RepositoryFacts, inspect_repository

__all__ = [
    "SUPPORTED_CI",
    "PlannedFile",
    "RepositoryFacts",
    "check_ci",
    "inspect_repository",
    "plan",
    "scaffold",
]
