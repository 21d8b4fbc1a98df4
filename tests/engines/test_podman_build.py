"""PodmanEngine.build against real podman: layer reuse, reproducible images, the context."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from conveyor.engines.podman import PodmanEngine
from conveyor.engines.port import BuildSpec, BuiltImage, ServiceSpec

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(180)]

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
COMMIT_TIME = 1_700_000_000


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Local image names a test builds (unique to it), removed afterwards."""
    made: list[str] = []
    yield made
    if made:
        subprocess.run(["podman", "rmi", "-f", *made], check=False, capture_output=True)


def fresh_name(names: list[str]) -> str:
    name = f"localhost/conveyor-test/build:{uuid.uuid4().hex[:12]}"
    names.append(name)
    return name


async def served_version(engine: PodmanEngine, image: BuiltImage) -> str:
    async with engine.service(ServiceSpec(image, 8080)) as endpoint, httpx.AsyncClient() as client:
        with anyio.fail_after(30):
            while True:
                try:
                    version: str = (await client.get(f"{endpoint.url}/version")).json()["version"]
                except httpx.TransportError:
                    await anyio.sleep(0.1)
                else:
                    return version


async def test_a_cached_build_reuses_earlier_layers_and_serves_the_new_sha(
    base_image: str, names: list[str], tmp_path: Path
) -> None:
    """The layer cache is on, and a changed GIT_SHA still reaches ENV (containers/buildah#5501)."""
    context = tmp_path / "app"
    context.mkdir()
    shutil.copy(HELLO / "app.py", context / "app.py")
    marker = uuid.uuid4().hex  # no other test's cache has this RUN layer
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        f"RUN echo {marker} $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n') > /nonce\n"
        "ARG GIT_SHA=dev\n"
        "ENV APP_VERSION=${GIT_SHA} PORT=8080\n"
        "COPY app.py /app/app.py\n"
        'CMD ["python3", "/app/app.py"]\n'
    )
    engine = PodmanEngine()
    shas = [uuid.uuid4().hex + "00000000", uuid.uuid4().hex + "11111111"]
    images = [
        await engine.build(BuildSpec(context, build_args={"GIT_SHA": sha}, tag=fresh_name(names)))
        for sha in shas
    ]

    nonces = [podman("run", "--rm", image.local_ref, "cat", "/nonce") for image in images]
    assert nonces[0] == nonces[1]  # the RUN layer came from the cache
    assert nonces[0].startswith(marker)
    assert images[0].id != images[1].id
    for image, sha in zip(images, shas, strict=True):
        assert await served_version(engine, image) == sha


async def test_two_builds_of_one_commit_are_one_image_with_one_digest(
    base_image: str, registry: str, names: list[str]
) -> None:
    sha = uuid.uuid4().hex + "deadbeef"
    spec = BuildSpec(
        HELLO,
        build_args={"BASE_IMAGE": base_image, "GIT_SHA": sha},
        labels={"org.opencontainers.image.revision": sha},
        timestamp=COMMIT_TIME,
    )
    uncached = PodmanEngine(layer_cache=False)  # each build starts from nothing
    first = await uncached.build(BuildSpec(**{**vars(spec), "tag": fresh_name(names)}))
    second = await uncached.build(BuildSpec(**{**vars(spec), "tag": fresh_name(names)}))
    cached = await PodmanEngine().build(BuildSpec(**{**vars(spec), "tag": fresh_name(names)}))

    assert first.id == second.id == cached.id
    created = json.loads(podman("image", "inspect", first.local_ref))[0]["Created"]
    assert created.startswith("2023-11-14T22:13:20")  # the commit time, not the clock
    digests = [
        (await uncached.publish(image, f"{registry}/repro:{tag}", insecure=True)).split("@")[1]
        for image, tag in ((first, "one"), (second, "two"))
    ]
    assert digests[0] == digests[1]


async def test_the_run_store_never_enters_the_context_and_the_ignore_file_still_applies(
    base_image: str, names: list[str], tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    (context / ".conveyor" / "runs" / "r1").mkdir(parents=True)
    (context / ".conveyor" / "runs" / "r1" / "image.tar").write_bytes(b"\0" * 4096)
    (context / "sub" / ".conveyor").mkdir(parents=True)
    (context / "sub" / ".conveyor" / "spans.jsonl").write_text("{}\n")
    (context / "keep.txt").write_text("kept\n")
    (context / "local.env").write_text("TOKEN=not-for-the-image\n")
    # a user's exception cannot bring the run store back
    (context / ".containerignore").write_text("local.env\n!.conveyor\n")
    (context / "Dockerfile").write_text(f"FROM {base_image}\nCOPY . /ctx\n")

    image = await PodmanEngine().build(BuildSpec(context, tag=fresh_name(names)))

    listed = podman("run", "--rm", image.local_ref, "find", "/ctx").split()
    assert sorted(listed) == sorted(
        ["/ctx", "/ctx/Dockerfile", "/ctx/.containerignore", "/ctx/keep.txt", "/ctx/sub"]
    )
