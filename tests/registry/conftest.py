"""Registry client tests: asyncio, the shared real registry, one behind Basic auth."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from engines.registry_api import PrivateRegistry, private_registry
from ports import free_port


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRegistry]:
    """A real docker-registry that answers 401 with a Basic challenge."""
    with private_registry(tmp_path_factory.mktemp("basic-registry"), free_port()) as registry:
        yield registry
