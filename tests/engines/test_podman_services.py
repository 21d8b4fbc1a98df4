"""Services of a run on real podman: a network of the run's own, reached by name, waited for.

The services are real servers in an image built here from the base image (a
small HTTP server, tests/resources/service/serve.py, the ``service_image``
fixture of tests/conftest.py); the run's
container fetches from them by name.  Each test has its own engine, whose
session label finds exactly what it made, whatever other tests run beside it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import anyio
import pytest
from podman_session import PodmanStarted, leftovers, of_kind, podman

from conveyor.engines.podman import PodmanEngine
from conveyor.engines.podman_args import LABEL, SESSION_LABEL
from conveyor.engines.port import BuildSpec, RunSpec, ServiceBinding
from conveyor.errors import EngineUnavailableError, ServiceStartError
from conveyor.process import observe_processes
from conveyor.secrets import Secret

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(120)]

TOKEN = Secret("API_TOKEN", "svc-s3cret-77e1")
FETCH = (
    "import sys, urllib.request\n"
    "for url in sys.argv[1:]:\n"
    "    print(url, urllib.request.urlopen(url, timeout=10).read().decode())\n"
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    return src


async def test_services_are_reached_by_name_and_removed_afterwards(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine()
    spec = RunSpec(
        base_image,
        ["python3", "-c", FETCH, "http://web:8000/", "http://api:9000/"],
        source,
        services=[
            ServiceBinding("web", service_image, 8000, env={"GREETING": "from-web"}),
            # the command replaces the image's: serve.py on another port
            ServiceBinding(
                "api",
                service_image,
                9000,
                env={"GREETING": "from-api"},
                command=["python3", "/srv/serve.py", "9000"],
            ),
        ],
    )

    result = await engine.run(spec)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["http://web:8000/ from-web", "http://api:9000/ from-api"]
    assert leftovers(engine) == ([], [])


async def test_a_failing_command_still_removes_its_services(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine()
    spec = RunSpec(
        base_image,
        ["sh", "-c", "exit 7"],
        source,
        services=[ServiceBinding("web", service_image, 8000)],
    )

    result = await engine.run(spec)

    assert result.exit_code == 7
    assert leftovers(engine) == ([], [])


async def test_a_service_that_never_opens_its_port_fails_within_the_bound(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine(service_timeout=2)
    started = PodmanStarted()
    spec = RunSpec(
        base_image,
        ["true"],
        source,
        secrets=[TOKEN],
        services=[
            ServiceBinding(
                "db",
                service_image,
                5432,
                env={"LEAKED": TOKEN.reveal()},
                command=["sh", "-c", 'echo "db booting, token $LEAKED"; sleep 600'],
            )
        ],
    )

    begun = time.monotonic()
    with observe_processes(started), pytest.raises(ServiceStartError) as caught:
        await engine.run(spec)
    waited = time.monotonic() - begun

    error = caught.value
    assert (error.service, error.image, error.port) == ("db", service_image, 5432)
    assert f"service 'db' (image {service_image}, port 5432)" in str(error)
    assert "did not accept connections on port 5432 within 2s" in str(error)
    assert "  | db booting, token ***" in str(error)
    assert TOKEN.reveal() not in str(error)
    assert "on every interface" in (error.hint or "")
    assert 2 <= waited < 20
    assert started.runs() == []  # the command never started
    assert leftovers(engine) == ([], [])


async def test_a_service_that_exits_fails_at_once_with_its_last_log_lines(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine(service_timeout=60)
    spec = RunSpec(
        base_image,
        ["true"],
        source,
        services=[
            ServiceBinding(
                "db",
                service_image,
                5432,
                command=["sh", "-c", "echo 'cannot bind 5432' >&2; exit 3"],
            )
        ],
    )

    begun = time.monotonic()
    with pytest.raises(ServiceStartError) as caught:
        await engine.run(spec)

    assert time.monotonic() - begun < 20  # not the 60 s bound
    assert "exited with code 3 before its port accepted connections" in str(caught.value)
    assert "  | cannot bind 5432" in str(caught.value)
    assert leftovers(engine) == ([], [])


async def test_a_service_image_that_cannot_start_is_named(base_image: str, source: Path) -> None:
    engine = PodmanEngine()
    missing = f"localhost/conveyor-test/absent:{uuid.uuid4().hex[:8]}"
    spec = RunSpec(base_image, ["true"], source, services=[ServiceBinding("db", missing, 5432)])

    with pytest.raises(ServiceStartError) as caught:
        await engine.run(spec)

    assert f"service 'db' (image {missing}, port 5432) could not be started: " in str(caught.value)
    assert "log line" not in str(caught.value)
    assert leftovers(engine) == ([], [])


async def test_a_cancelled_run_removes_its_container_services_and_network(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine()
    spec = RunSpec(
        base_image, ["sleep", "60"], source, services=[ServiceBinding("web", service_image, 8000)]
    )

    async with anyio.create_task_group() as group:
        group.start_soon(engine.run, spec)
        with anyio.fail_after(60):
            while True:
                if of_kind(engine, "run"):
                    break
                await anyio.sleep(0.1)
        assert len(of_kind(engine, "service")) == 1
        group.cancel_scope.cancel()

    assert leftovers(engine) == ([], [])


async def test_a_timeout_while_waiting_for_a_service_removes_it_and_the_network(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine(service_timeout=60)
    spec = RunSpec(
        base_image,
        ["true"],
        source,
        services=[ServiceBinding("db", service_image, 5432, command=["sleep", "600"])],
    )

    with anyio.move_on_after(4) as scope:
        await engine.run(spec)

    assert scope.cancelled_caught
    assert leftovers(engine) == ([], [])


async def test_the_sweep_removes_the_sessions_containers_and_networks(base_image: str) -> None:
    engine = PodmanEngine()
    labels = ["--label", f"{LABEL}=network", "--label", f"{SESSION_LABEL}={engine.session}"]
    network = f"conveyor-net-test-{uuid.uuid4().hex[:8]}"
    container = f"conveyor-svc-test-{uuid.uuid4().hex[:8]}"
    # what an interrupted removal would have left
    podman("network", "create", *labels, network)
    podman("create", "--name", container, *labels, "--network", network, base_image, "true")

    removed = await engine.remove_leftovers()

    assert removed == [container, network]
    assert leftovers(engine) == ([], [])


async def test_concurrent_runs_each_reach_their_own_service_of_the_same_name(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine()
    said: dict[str, str] = {}

    async def run(greeting: str) -> None:
        spec = RunSpec(
            base_image,
            ["python3", "-c", FETCH, "http://web:8000/"],
            source,
            services=[ServiceBinding("web", service_image, 8000, env={"GREETING": greeting})],
        )
        result = await engine.run(spec)
        assert result.exit_code == 0, result.stderr
        said[greeting] = result.stdout.strip()

    async with anyio.create_task_group() as group:
        for greeting in ("first", "second", "third"):
            group.start_soon(run, greeting)

    assert said == {g: f"http://web:8000/ {g}" for g in ("first", "second", "third")}
    assert leftovers(engine) == ([], [])


async def test_rootless_podman_is_refused_before_anything_is_made(
    service_image: str,
    base_image: str,
    source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A double of one answer of podman's: rootless podman cannot be set up on this machine.
    # Every other command goes to the real podman; the double logs what it was asked.
    # The process is taken for a user's (root's local podman is rootful, nothing to ask).
    monkeypatch.setattr("conveyor.engines.podman_services.os.geteuid", lambda: 1000)
    log = tmp_path / "asked.log"
    double = tmp_path / "podman"
    double.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'if [ "$1" = info ]; then echo true; exit 0; fi\n'
        'exec podman "$@"\n'
    )
    double.chmod(0o755)
    engine = PodmanEngine(podman=str(double))
    spec = RunSpec(
        base_image, ["true"], source, services=[ServiceBinding("web", service_image, 8000)]
    )

    with pytest.raises(EngineUnavailableError) as caught:
        await engine.run(spec)

    assert "services need rootful podman" in str(caught.value)
    assert "--engine dagger" in (caught.value.hint or "")
    assert log.read_text().splitlines() == ["info --format {{.Host.Security.Rootless}}"]
    assert leftovers(engine) == ([], [])


async def test_a_service_of_an_image_the_engine_built_is_run_by_its_id(
    base_image: str, source: Path, tmp_path: Path
) -> None:
    engine = PodmanEngine()
    context = tmp_path / "app"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\nWORKDIR /srv\nRUN echo built > index.html\n"
        'CMD ["python3", "-m", "http.server", "8080"]\n'
    )
    image = await engine.build(BuildSpec(context=context))
    try:
        app = ServiceBinding("app", image.id, 8080, built=image)
        spec = RunSpec(
            base_image, ["python3", "-c", FETCH, "http://app:8080/"], source, services=[app]
        )

        result = await engine.run(spec)
    finally:
        await anyio.run_process(["podman", "rmi", "-f", image.id], check=False)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "http://app:8080/ built"
    assert leftovers(engine) == ([], [])
