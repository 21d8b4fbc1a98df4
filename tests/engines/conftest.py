"""Engine tests: async on asyncio; a registry behind Basic auth for credential paths."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from registry_api import PrivateRegistry
from registry_api import private_registry as start_private_registry


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRegistry]:
    """A real docker-registry that answers 401 with a Basic challenge."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    with start_private_registry(tmp_path_factory.mktemp("private-registry"), port) as registry:
        yield registry
