from __future__ import annotations

import threading
import time

import anyio
import httpx
import pytest

from conveyor.errors import ConfigError, SmokeError
from conveyor.smoke.contract import served_version
from conveyor.smoke.probe import probe_version

from .conftest import Behaviour, VersionServer, free_port, json_body

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SHA = "3f2c1e0b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"


async def test_waits_until_the_new_version_is_served(serve: type[VersionServer]) -> None:
    behaviour = Behaviour(
        before=(200, "text/plain", "old-0000\n"),
        after=(200, "text/plain", f"{SHA}\n"),
        ready_after=0.6,
    )
    server = serve(behaviour).start()

    result = await probe_version(server.url, SHA, deadline=10, interval=0.1)

    assert result.version == SHA
    assert result.status == 200
    assert result.url == server.url
    assert result.attempts == len(behaviour.requests)
    assert result.attempts >= 3
    assert result.elapsed >= 0.5


async def test_json_version_field_is_compared(serve: type[VersionServer]) -> None:
    server = serve(
        Behaviour(before=(200, "application/json", json_body(version=f"hello-{SHA}", port=8080)))
    ).start()

    result = await probe_version(server.url, SHA, deadline=5)

    assert result.version == f"hello-{SHA}"
    assert result.attempts == 1


async def test_expected_in_another_json_field_does_not_count(serve: type[VersionServer]) -> None:
    server = serve(
        Behaviour(before=(200, "application/json", json_body(version="1.0.0", previous=SHA)))
    ).start()

    with pytest.raises(SmokeError) as info:
        await probe_version(server.url, SHA, deadline=0.5, interval=0.1)

    assert '"version": "1.0.0"' in info.value.last


async def test_wrong_version_forever_fails_at_the_deadline(serve: type[VersionServer]) -> None:
    behaviour = Behaviour(before=(200, "text/plain", "v1"))
    server = serve(behaviour).start()
    started = time.monotonic()

    with pytest.raises(SmokeError) as info:
        await probe_version(server.url, "v2", deadline=0.8, interval=0.1)

    took = time.monotonic() - started
    error = info.value
    assert 0.8 <= took < 2.0
    assert error.last == "HTTP 200, version is not 'v2': v1"
    assert error.expected == "v2"
    assert error.waited >= 0.8
    assert str(error).startswith(
        f"{server.url} did not serve version 'v2' (any 2xx with version 'v2') within 1s"
    )
    assert "(last: HTTP 200, version is not 'v2': v1)" in str(error)
    assert len(behaviour.requests) >= 3


async def test_error_status_is_not_success_even_with_the_version(
    serve: type[VersionServer],
) -> None:
    server = serve(Behaviour(before=(503, "text/plain", f"draining {SHA}"))).start()

    with pytest.raises(SmokeError) as info:
        await probe_version(server.url, SHA, deadline=0.4, interval=0.1)

    assert info.value.last == f"HTTP 503, expected 2xx: draining {SHA}"


async def test_nothing_listening_is_retried_until_the_deadline() -> None:
    url = f"http://127.0.0.1:{free_port()}/version"
    started = time.monotonic()

    with pytest.raises(SmokeError) as info:
        await probe_version(url, SHA, deadline=0.6, interval=0.1)

    assert time.monotonic() - started >= 0.6
    assert info.value.last.startswith("ConnectError: ")
    assert info.value.url == url


async def test_connection_errors_then_a_server_that_comes_up(
    serve: type[VersionServer],
) -> None:
    port = free_port()
    server = serve(Behaviour(before=(200, "text/plain", SHA)), port=port)
    timer = threading.Timer(0.5, server.start)
    timer.start()
    try:
        result = await probe_version(server.url, SHA, deadline=10, interval=0.1, backoff=1.0)
    finally:
        timer.join()

    assert result.version == SHA
    assert result.attempts >= 3  # refused while the server was not up yet
    assert result.elapsed >= 0.4


async def test_waits_grow_by_backoff_up_to_the_maximum(serve: type[VersionServer]) -> None:
    behaviour = Behaviour(before=(200, "text/plain", "v1"))
    server = serve(behaviour).start()
    waits: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        await anyio.sleep(seconds)

    with pytest.raises(SmokeError):
        await probe_version(
            server.url,
            "v2",
            deadline=1.5,
            interval=0.1,
            backoff=2.0,
            max_interval=0.4,
            sleep=recording_sleep,
        )

    # the waits asked for: 0.1, 0.2, then capped at 0.4; the last one cut to the deadline
    assert waits[:3] == pytest.approx([0.1, 0.2, 0.4])
    assert all(w == pytest.approx(0.4) for w in waits[2:-1])
    assert 0 < waits[-1] <= 0.4
    assert len(behaviour.requests) == len(waits) + 1


async def test_credentials_in_the_url_are_not_shown(serve: type[VersionServer]) -> None:
    server = serve(Behaviour(before=(200, "text/plain", "v1"))).start()
    url = server.url.replace("http://", "http://deploy:s3cr3t-token@")

    with pytest.raises(SmokeError) as info:
        await probe_version(url, "v2", deadline=0.3, interval=0.1)

    assert "s3cr3t-token" not in str(info.value)
    assert "http://***@127.0.0.1" in str(info.value)


async def test_uses_a_given_client_without_closing_it(serve: type[VersionServer]) -> None:
    server = serve(Behaviour(before=(200, "text/plain", SHA))).start()

    async with httpx.AsyncClient() as client:
        result = await probe_version(server.url, SHA, deadline=5, client=client)
        assert not client.is_closed

    assert result.attempts == 1


async def test_slow_answer_times_out_and_is_retried(serve: type[VersionServer]) -> None:
    behaviour = Behaviour(before=(200, "text/plain", SHA))
    original = behaviour.answer
    slowed = threading.Event()

    def slow_first() -> tuple[int, str, str]:
        if not slowed.is_set():
            slowed.set()
            time.sleep(0.5)
        return original()

    behaviour.answer = slow_first  # type: ignore[method-assign]
    server = serve(behaviour).start()

    result = await probe_version(server.url, SHA, deadline=5, interval=0.1, request_timeout=0.2)

    assert result.attempts == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"expected": " "}, "expected version"),
        ({"deadline": 0}, "deadline"),
        ({"interval": -1}, "interval"),
    ],
)
async def test_bad_arguments(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {"expected": SHA, "deadline": 1.0, "interval": 0.5} | kwargs

    with pytest.raises(ConfigError) as info:
        await probe_version("http://127.0.0.1:1/", **values)  # type: ignore[arg-type]

    assert info.value.field == field


@pytest.mark.parametrize(
    ("body", "version"),
    [
        ('{"version": "1.2.3"}', "1.2.3"),
        ('{"version": 7}', "7"),
        ('{"name": "hello"}', '{"name": "hello"}'),
        ("  abc\n", "abc"),
        ("[1, 2]", "[1, 2]"),
    ],
)
def test_served_version(body: str, version: str) -> None:
    assert served_version(body) == version


async def test_probe_runs_alongside_other_tasks(serve: type[VersionServer]) -> None:
    server = serve(Behaviour(before=(200, "text/plain", SHA))).start()
    results = []

    async def one() -> None:
        results.append(await probe_version(server.url, SHA, deadline=5))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)

    assert [r.version for r in results] == [SHA] * 3


# --- several good answers in a row ---------------------------------------------------------


class GoodThen(Behaviour):
    """Serves the version ``good`` times, then ``after`` (or, with ``then``, runs it once)."""

    def __init__(self, good: int, after: tuple[int, str, str], then: object = None) -> None:
        super().__init__(before=(200, "text/plain", f"{SHA}\n"), after=after)
        self.good = good
        self.then = then

    def answer(self) -> tuple[int, str, str]:
        self.requests.append(time.monotonic())
        if len(self.requests) <= self.good:
            return self.before
        if callable(self.then):
            threading.Thread(target=self.then).start()  # the service goes away
            self.then = None
        assert self.after is not None
        return self.after


async def test_steady_answers_pass_after_the_consecutive_count(serve: type[VersionServer]) -> None:
    behaviour = Behaviour(before=(200, "text/plain", f"{SHA}\n"))
    server = serve(behaviour).start()
    waits: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        await anyio.sleep(seconds)

    result = await probe_version(
        server.url, SHA, deadline=5, interval=0.05, consecutive=3, sleep=recording_sleep
    )

    assert result.attempts == 3 == len(behaviour.requests)
    assert waits == pytest.approx([0.05, 0.05])  # a steady pace while counting, no backoff


async def test_a_service_that_fails_after_its_first_answer_does_not_pass(
    serve: type[VersionServer],
) -> None:
    behaviour = GoodThen(1, after=(503, "text/plain", "worker crashed"))
    server = serve(behaviour).start()

    with pytest.raises(SmokeError) as info:
        await probe_version(server.url, SHA, deadline=0.8, interval=0.05, consecutive=3)

    assert info.value.last == (
        "HTTP 503, expected 2xx: worker crashed; at best 1 good answer(s) in a row, 3 needed"
    )
    assert len(behaviour.requests) >= 3


async def test_a_service_that_dies_after_its_first_answer_does_not_pass(
    serve: type[VersionServer],
) -> None:
    behaviour = GoodThen(1, after=(200, "text/plain", f"{SHA}\n"))
    server = serve(behaviour).start()
    behaviour.then = server.stop  # on the second request: it answers, then is gone

    with pytest.raises(SmokeError) as info:
        await probe_version(server.url, SHA, deadline=1.0, interval=0.05, consecutive=3)

    assert info.value.last.startswith("ConnectError: ")
    assert info.value.last.endswith("; at best 2 good answer(s) in a row, 3 needed")


async def test_one_answer_is_enough_when_asked_for(serve: type[VersionServer]) -> None:
    behaviour = GoodThen(1, after=(503, "text/plain", "worker crashed"))
    server = serve(behaviour).start()

    result = await probe_version(server.url, SHA, deadline=2, consecutive=1)

    assert result.attempts == 1
