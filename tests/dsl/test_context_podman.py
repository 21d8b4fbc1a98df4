"""``StageContext.build`` and ``.service`` on real podman: the build through the engine port,
the service's block entered once its port accepts connections, a bounded wait otherwise."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from conveyor.config.loader import load_config
from conveyor.dsl import StageContext
from conveyor.engines.podman import PodmanEngine
from conveyor.errors import UnreachableError
from conveyor.stages.context import DeliveryContext

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(180)]

SHA = "0123456789abcdef0123456789abcdef01234567"
CONFIG = """
[app]
name = "hello"

[registry]
host = "127.0.0.1:5000"
repository = "hello"
"""


@pytest.fixture
def tag() -> Iterator[str]:
    """The local name a test builds, removed afterwards."""
    name = f"localhost/conveyor-test/dsl:{uuid.uuid4().hex[:12]}"
    yield name
    subprocess.run(["podman", "rmi", "-f", name], check=False, capture_output=True, timeout=60)


@pytest.fixture
async def ctx(tmp_path: Path, base_image: str) -> AsyncIterator[StageContext]:
    (tmp_path / "conveyor.toml").write_text(CONFIG, encoding="utf-8")
    served = tmp_path / "served"
    served.mkdir()
    # the server starts a moment after the container: the wait has something to wait for
    (served / "Dockerfile").write_text(
        f"FROM {base_image}\nWORKDIR /srv\nARG WHICH\nRUN echo $WHICH > which\n"
        'CMD ["sh", "-c", "sleep 1 && exec python3 -m http.server 8000"]\n',
        encoding="utf-8",
    )
    engine = PodmanEngine()
    config = load_config(tmp_path / "conveyor.toml", env={})
    try:
        yield StageContext("probe", DeliveryContext(config, engine, SHA, tmp_path / "out"), {})
    finally:
        with anyio.CancelScope(shield=True):
            await engine.remove_leftovers()  # what a failed test may have left


async def test_the_service_block_starts_once_the_port_answers(ctx: StageContext, tag: str) -> None:
    image = await ctx.build("served", build_args={"WHICH": "built-by-a-stage"}, tag=tag)

    async with ctx.service(image, 8000) as endpoint, httpx.AsyncClient() as client:
        # one request, no retry: the block began after the server listened
        answer = await client.get(f"{endpoint.url}/which", timeout=10)

    assert answer.text == "built-by-a-stage\n"


async def test_a_port_nobody_serves_is_unreachable_after_the_bound(
    ctx: StageContext, tag: str
) -> None:
    image = await ctx.build("served", build_args={"WHICH": "x"}, tag=tag)

    with anyio.fail_after(60), pytest.raises(UnreachableError) as raised:
        async with ctx.service(image, 8001, ready_within=3):
            pytest.fail("the block ran without a server")

    assert raised.value.what == "service"
    assert raised.value.detail == "its port accepted no connection within 3s"
    assert tag in raised.value.target
