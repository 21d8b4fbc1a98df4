"""The host-wide publish lock: one holder per tag, released however the holder ends."""

from __future__ import annotations

import sys
import uuid

import anyio
import pytest

from conveyor.stages.publish_lock import publish_lock

TAG = uuid.uuid4().hex  # other runs on this machine take other locks
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_second_holder_waits_and_another_tag_does_not() -> None:
    order: list[str] = []

    async def hold(name: str, address: str, seconds: float) -> None:
        async with publish_lock(address):
            order.append(f"{name} in")
            await anyio.sleep(seconds)
            order.append(f"{name} out")

    async with anyio.create_task_group() as group:
        group.start_soon(hold, "first", f"r/a:{TAG}", 0.5)
        await anyio.sleep(0.1)
        group.start_soon(hold, "second", f"r/a:{TAG}", 0)
        group.start_soon(hold, "other", f"r/b:{TAG}", 0)

    assert order.index("other in") < order.index("first out")  # another tag: no wait
    assert order.index("second in") > order.index("first out")


async def test_a_cancelled_waiter_and_a_killed_holder_release_it() -> None:
    script = (
        "import anyio\n"
        "from conveyor.stages.publish_lock import publish_lock\n"
        "async def main():\n"
        f"    async with publish_lock('r/c:{TAG}'):\n"
        "        print('held', flush=True)\n"
        "        await anyio.sleep(60)\n"
        "anyio.run(main)\n"
    )
    async with await anyio.open_process([sys.executable, "-c", script]) as holder:
        assert holder.stdout is not None
        assert (await holder.stdout.receive()).strip() == b"held"
        with anyio.move_on_after(0.5) as waited:
            async with publish_lock(f"r/c:{TAG}"):
                pytest.fail("the lock was taken while another process held it")
        assert waited.cancelled_caught
        holder.kill()  # SIGKILL: no cleanup of its own
        await holder.wait()
    with anyio.fail_after(2):
        async with publish_lock(f"r/c:{TAG}"):
            pass
