"""A run's services on the Dagger engine, against the API contract, offline.

``DaggerApiDouble`` validates every query against the Dagger v0.21.8 schema;
the tests assert what was sent: each service built from its image with its
env and command, its port exposed (the engine's health check waits for it),
started before the command, bound to the command's container by name, and
stopped afterwards -- also when the command fails, a start fails or times
out, or the run is cancelled.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import anyio
import pytest
from dagger_query import DaggerApiDouble, QueryFailure

from conveyor.engines.dagger import DaggerEngine
from conveyor.engines.port import BuildSpec, RunSpec, ServiceBinding
from conveyor.errors import ServiceStartError
from conveyor.secrets import Secret

pytestmark = pytest.mark.anyio

DB_IMAGE = "postgres:16.4"
CACHE_IMAGE = "127.0.0.1:5000/conveyor/redis:7.4.1"
NODE_ID = re.compile(r'node\(id: "([^"]+)"\)')
TOKEN = Secret("DB_TOKEN", "tok-Service-Secret-31")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def services() -> list[ServiceBinding]:
    return [
        ServiceBinding("db", DB_IMAGE, 5432, env={"POSTGRES_PASSWORD": "app"}),
        ServiceBinding("cache", CACHE_IMAGE, 6379, command=["redis-server", "--save", ""]),
    ]


def answered() -> DaggerApiDouble:
    return DaggerApiDouble(answers={"exitCode": 0, "stdout": "ok", "stderr": ""})


def lineage(double: DaggerApiDouble, id_value: str) -> str:
    """The query that made ``id_value`` and those of the objects it was loaded from."""
    text = double.ids.get(id_value, "")
    return text + "".join(lineage(double, parent) for parent in NODE_ID.findall(text))


def bound_ids(double: DaggerApiDouble) -> dict[str, str]:
    return {call["alias"]: call["service"] for call in double.calls("withServiceBinding")}


async def test_services_are_started_then_bound_by_name_to_the_command_and_stopped(
    tmp_path: Path,
) -> None:
    double = answered()
    spec = RunSpec("python:3.12-slim", ["pytest", "-q"], tmp_path, services=services())

    result = await DaggerEngine(double.client()).run(spec)

    assert result.exit_code == 0
    assert double.calls("from") == [
        {"address": DB_IMAGE},
        {"address": CACHE_IMAGE},
        {"address": "python:3.12-slim"},
    ]
    assert double.calls("withExposedPort") == [{"port": 5432}, {"port": 6379}]
    assert {"name": "POSTGRES_PASSWORD", "value": "app"} in double.calls("withEnvVariable")
    assert double.calls("asService") == [
        {"useEntrypoint": True},
        {"args": ["redis-server", "--save", ""], "useEntrypoint": True},
    ]
    # each started (the engine waits for its port) before the command's query is sent
    starts = [i for i, text in enumerate(double.documents) if "start\n" in text]
    execs = [i for i, text in enumerate(double.documents) if "withExec" in text]
    assert len(starts) == 2
    assert max(starts) < min(execs)
    bound = bound_ids(double)
    assert list(bound) == ["db", "cache"]
    # what is bound is the started service (loaded by the ID its start returned)
    assert double.made_by(bound["db"], "start")
    assert double.made_by(bound["db"], "asService")
    assert f'from(address: "{DB_IMAGE}")' in lineage(double, bound["db"])
    assert DB_IMAGE not in lineage(double, bound["cache"])
    assert f'from(address: "{CACHE_IMAGE}")' in lineage(double, bound["cache"])
    # the binding is on the container that runs the command
    (run,) = (text for text in double.documents if "withExec" in text)
    assert run.index("withServiceBinding") < run.index("withExec")
    assert len(double.calls("stop")) == 2


async def test_a_failing_command_still_stops_its_services(tmp_path: Path) -> None:
    double = DaggerApiDouble(answers={"exitCode": 1, "stdout": "", "stderr": "E  failed"})
    spec = RunSpec("python:3.12-slim", ["pytest"], tmp_path, services=services()[:1])

    result = await DaggerEngine(double.client()).run(spec)

    assert result.exit_code == 1
    assert len(double.calls("stop")) == 1


async def test_a_service_the_engine_cannot_start_is_named_and_masked(tmp_path: Path) -> None:
    message = f"start db: exited: FATAL password authentication failed ({TOKEN.reveal()})"
    double = DaggerApiDouble(failures=[QueryFailure("start", message)])
    spec = RunSpec(
        "python:3.12-slim", ["pytest"], tmp_path, secrets=[TOKEN], services=services()[:1]
    )

    with pytest.raises(ServiceStartError) as caught:
        await DaggerEngine(double.client()).run(spec)

    text = str(caught.value)
    assert f"service 'db' (image {DB_IMAGE}, port 5432) did not start on the Dagger engine" in text
    assert "FATAL password authentication failed (***)" in text
    assert TOKEN.reveal() not in text
    assert double.calls("withExec") == []  # the command never ran
    assert len(double.calls("stop")) == 1


async def test_a_service_whose_port_never_opens_fails_within_the_bound(tmp_path: Path) -> None:
    double = answered()
    double.delays["start\n"] = 30  # the engine's health check never passes
    spec = RunSpec("python:3.12-slim", ["pytest"], tmp_path, services=services()[:1])

    begun = time.monotonic()
    with pytest.raises(ServiceStartError) as caught:
        await DaggerEngine(double.client(), service_timeout=0.5).run(spec)

    assert time.monotonic() - begun < 5
    assert "did not accept connections on port 5432 within 0.5s" in str(caught.value)
    assert double.calls("withExec") == []
    assert len(double.calls("stop")) == 1


async def test_a_cancelled_run_stops_its_services(tmp_path: Path) -> None:
    double = answered()
    double.delays["withExec"] = 30  # a command still running
    spec = RunSpec("python:3.12-slim", ["sleep", "999"], tmp_path, services=services())

    with anyio.move_on_after(0.5) as scope:
        await DaggerEngine(double.client()).run(spec)

    assert scope.cancelled_caught
    assert len(double.calls("start")) == 2
    assert len(double.calls("stop")) == 2


async def test_a_local_image_name_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    double = answered()
    local = ServiceBinding("web", "localhost/conveyor-test/service:1", 8000)
    spec = RunSpec("python:3.12-slim", ["true"], tmp_path, services=[local])

    with pytest.raises(ServiceStartError) as caught:
        await DaggerEngine(double.client()).run(spec)

    assert "service 'web' (image localhost/conveyor-test/service:1, port 8000)" in str(caught.value)
    assert "registry address" in (caught.value.hint or "")
    assert double.documents == []


async def test_a_service_of_the_image_this_run_built_runs_that_container(tmp_path: Path) -> None:
    double = answered()
    engine = DaggerEngine(double.client())
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    image = await engine.build(BuildSpec(context=tmp_path))
    app = ServiceBinding("app", image.id, 8080, built=image)
    spec = RunSpec("python:3.12-slim", ["true"], tmp_path, services=[app])

    await engine.run(spec)

    # nothing pulled for the service: only the command's image is resolved
    assert double.calls("from") == [{"address": "python:3.12-slim"}]
    bound = bound_ids(double)
    assert list(bound) == ["app"]
    assert "dockerBuild" in lineage(double, bound["app"])
    assert double.calls("withExposedPort") == [{"port": 8080}]
    assert double.calls("asService") == [{"useEntrypoint": True}]
    assert len(double.calls("stop")) == 1
