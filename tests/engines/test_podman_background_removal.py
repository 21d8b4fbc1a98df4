"""Removing services in the background while a run goes on, on real podman.

Inside :meth:`PodmanEngine.removing_in_background` (the CLI's runs) a stage
with a service ends at its verdict: the service and its network are removed
beside the next stages, and the context waits for every removal when it
ends, however it ends.  The sweep after a run is needed only when a removal is in doubt
(:attr:`PodmanEngine.may_have_leftovers`).  The services are the real HTTP server of
tests/resources/service (the ``service_image`` fixture).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from podman_session import PodmanStarted, leftovers, of_kind, podman

from conveyor.engines.podman import PodmanEngine
from conveyor.engines.port import BuiltImage, RunSpec, ServiceBinding, ServiceSpec
from conveyor.process import observe_processes
from conveyor.smoke.probe import probe_version

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(180)]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    return src


def built(image: str) -> BuiltImage:
    return BuiltImage(
        id=podman("image", "inspect", "--format", "{{.Id}}", image).strip(), local_ref=image
    )


async def test_a_run_with_a_service_returns_before_the_removal_which_the_context_waits_for(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine()
    started = PodmanStarted()
    spec = RunSpec(
        base_image, ["true"], source, services=[ServiceBinding("web", service_image, 8000)]
    )
    with observe_processes(started):
        async with engine.removing_in_background():
            result = await engine.run(spec)
            # no await since the run returned: the removal has not even started
            assert started.removals() == []
            containers, networks = leftovers(engine)
            assert len(containers) == 1
            assert len(networks) == 1
        # the context waited for the service's removal, then the network's
        assert [c[1:3] for c in started.removals()] == [("rm", "-f"), ("network", "rm")]
    assert result.exit_code == 0, result.stderr
    assert leftovers(engine) == ([], [])
    # every removal confirmed by its exit code (and the run's own by --rm): no sweep needed
    assert not engine.may_have_leftovers


async def test_the_smoke_service_is_removed_in_the_background_after_its_context(
    service_image: str,
) -> None:
    engine = PodmanEngine()
    async with engine.removing_in_background():
        async with engine.service(ServiceSpec(built(service_image), 8000)) as endpoint:
            answer = await probe_version(endpoint.url, "hello", deadline=30, interval=0.1)
        assert len(leftovers(engine)[0]) == 1  # still there: being removed beside the run
    assert answer.status == 200
    assert leftovers(engine) == ([], [])
    assert not engine.may_have_leftovers


async def test_an_error_in_the_run_is_raised_as_itself_after_the_removals(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine()
    spec = RunSpec(
        base_image, ["true"], source, services=[ServiceBinding("web", service_image, 8000)]
    )

    async def a_run_that_fails_after_its_service_stage() -> None:
        async with engine.removing_in_background():
            await engine.run(spec)
            raise LookupError("a later stage failed")

    with pytest.raises(LookupError, match="a later stage failed"):
        await a_run_that_fails_after_its_service_stage()
    assert leftovers(engine) == ([], [])


async def test_a_cancelled_run_still_waits_for_every_removal(
    service_image: str, base_image: str, source: Path
) -> None:
    engine = PodmanEngine()
    first = RunSpec(
        base_image, ["true"], source, services=[ServiceBinding("web", service_image, 8000)]
    )
    second = RunSpec(
        base_image, ["sleep", "60"], source, services=[ServiceBinding("api", service_image, 8000)]
    )
    with anyio.CancelScope() as scope:
        async with engine.removing_in_background(), anyio.create_task_group() as group:
            await engine.run(first)  # its removal runs in the background
            group.start_soon(engine.run, second)
            with anyio.fail_after(60):
                while True:
                    if of_kind(engine, "run"):  # the second's own container runs
                        break
                    await anyio.sleep(0.1)
            scope.cancel()
    assert scope.cancelled_caught
    assert leftovers(engine) == ([], [])
    # a podman killed half-way may make something after its removal: the sweep still runs
    assert engine.may_have_leftovers
    assert await engine.remove_leftovers() == []
