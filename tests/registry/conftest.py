"""Registry client tests: asyncio, the shared real registry, one behind Basic auth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engines.registry_api import PrivateRegistry, private_registry
from ports import free_port


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRegistry]:
    """A real docker-registry that answers 401 with a Basic challenge."""
    with private_registry(tmp_path_factory.mktemp("basic-registry"), free_port()) as registry:
        yield registry
