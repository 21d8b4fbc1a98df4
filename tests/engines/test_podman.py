"""PodmanEngine against real podman, skopeo and a real registry on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from registry_api import PrivateRegistry, push_image

from conveyor.engines import podman as podman_engine
from conveyor.engines.podman import PodmanEngine
from conveyor.engines.port import (
    BuildSpec,
    BuiltImage,
    CacheMount,
    Engine,
    RegistryAuth,
    RemoteImage,
    RunSpec,
    ServiceSpec,
)
from conveyor.errors import (
    CommandFailedError,
    EngineError,
    RegistryAuthError,
    ToolMissingError,
    UnreachableError,
)
from conveyor.secrets import Secret

pytestmark = [pytest.mark.anyio, pytest.mark.podman, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello"
TOKEN = Secret("API_TOKEN", "s3cret-b81f-value")


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


async def tool(*argv: str) -> str:
    """Run podman/skopeo from an async test to look at what the engine did."""
    return (await anyio.run_process(list(argv), check=True)).stdout.decode()


async def containers_running(marker: str) -> list[str]:
    """Names of the engine's containers whose command line contains ``marker``.

    Other test runs may use podman on the same machine at the same time, so a
    test finds its own containers by a unique marker, never by label alone.
    """
    listing = await tool(
        "podman", "ps", "-a", "--no-trunc", "--filter", "label=io.conveyor.engine",
        "--format", "{{.Names}} {{.Command}}",
    )  # fmt: skip
    return [line.split()[0] for line in listing.splitlines() if marker in line]


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def engine() -> PodmanEngine:
    return PodmanEngine()


@pytest.fixture
def tag() -> Iterator[str]:
    """A unique local image name, removed after the test."""
    name = f"localhost/conveyor-test/img:{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["podman", "rmi", "-f", name], check=False, capture_output=True)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "input.txt").write_text("from the checkout\n")
    return src


def test_podman_engine_satisfies_the_port() -> None:
    assert isinstance(PodmanEngine(), Engine)


# -- run -------------------------------------------------------------------------


async def test_run_passes_env_and_secret_by_name_only(
    engine: PodmanEngine, base_image: str, source: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    spec = RunSpec(
        image=base_image,
        command=[
            "sh",
            "-c",
            'echo "plain=$PLAIN token=$API_TOKEN"; cat input.txt; sleep 2',
            marker,
        ],
        source=source,
        env={"PLAIN": "visible"},
        secrets=[TOKEN],
    )
    seen: dict[str, str] = {}

    async def inspect_while_running() -> None:
        with anyio.fail_after(30):
            # Polling podman is the point: the container is the engine's, not ours.
            while True:
                names = await containers_running(marker)
                if names:
                    break
                await anyio.sleep(0.1)
        seen["argv"] = await tool(
            "podman", "inspect", names[0],
            "--format", "{{json .Config.CreateCommand}} {{json .Args}}",
        )  # fmt: skip

    async with anyio.create_task_group() as group:
        group.start_soon(inspect_while_running)
        result = await engine.run(spec)

    assert result.exit_code == 0
    # The container got the value (the redactor masks it on the way back) ...
    assert result.stdout.splitlines() == ["plain=visible token=***", "from the checkout"]
    # ... while podman's recorded command line only names it.
    assert "API_TOKEN" in seen["argv"]
    assert "PLAIN=visible" in seen["argv"]
    assert TOKEN.reveal() not in seen["argv"]


async def test_outputs_are_exported_after_a_failing_command(
    engine: PodmanEngine, base_image: str, source: Path, tmp_path: Path
) -> None:
    script = (
        'echo \'<testsuite tests="1" failures="1"/>\' > junit.xml; '
        "mkdir -p reports && echo cov > reports/coverage.txt; "
        'echo "failing, token $API_TOKEN" >&2; exit 3'
    )
    export = tmp_path / "export"
    result = await engine.run(
        RunSpec(
            image=base_image,
            command=["sh", "-c", script],
            source=source,
            secrets=[TOKEN],
            outputs=["junit.xml", "reports", "input.txt", "never-written.xml"],
            export_dir=export,
        )
    )
    assert result.exit_code == 3
    assert result.stderr.strip() == "failing, token ***"
    assert set(result.exported) == {"junit.xml", "reports", "input.txt"}
    assert (export / "junit.xml").read_text() == '<testsuite tests="1" failures="1"/>\n'
    assert (export / "reports" / "coverage.txt").read_text() == "cov\n"
    assert (export / "input.txt").read_text() == "from the checkout\n"
    # The checkout is untouched: writes went to the overlay's scratch layer.
    assert sorted(p.name for p in source.iterdir()) == ["input.txt"]  # noqa: ASYNC240


async def test_example_unit_tests_run_in_the_base_image_and_write_junit(
    engine: PodmanEngine, base_image: str, tmp_path: Path
) -> None:
    result = await engine.run(
        RunSpec(
            image=base_image,
            command=["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                     "--junitxml=junit.xml"],
            source=HELLO,
            outputs=["junit.xml"],
            export_dir=tmp_path,
        )
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    suite = (tmp_path / "junit.xml").read_text()
    assert 'tests="4"' in suite
    assert 'failures="0"' in suite
    assert not (HELLO / "junit.xml").exists()


async def test_cache_volume_survives_between_runs_and_ca_bundle_is_mounted(
    engine: PodmanEngine, base_image: str, source: Path, tmp_path: Path
) -> None:
    cache = CacheMount(name=f"test-{uuid.uuid4().hex[:8]}", path="/cache")
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\ncorp\n-----END CERTIFICATE-----\n")
    try:
        first = await engine.run(
            RunSpec(base_image, ["sh", "-c", "echo warm > /cache/state"], source, caches=[cache])
        )
        second = await engine.run(
            RunSpec(
                base_image,
                ["sh", "-c", 'cat /cache/state; head -2 "$SSL_CERT_FILE"'],
                source,
                caches=[cache],
                ca_bundle=bundle,
            )
        )
    finally:
        await anyio.run_process(
            ["podman", "volume", "rm", "-f", f"conveyor-cache-{cache.name}"], check=False
        )
    assert first.exit_code == 0
    assert second.stdout.splitlines() == ["warm", "-----BEGIN CERTIFICATE-----", "corp"]


async def test_run_rejects_bad_input_before_starting(
    engine: PodmanEngine, base_image: str, source: Path, tmp_path: Path
) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        await engine.run(RunSpec(base_image, ["true"], tmp_path / "absent"))
    with pytest.raises(EngineError, match="without an export directory"):
        await engine.run(RunSpec(base_image, ["true"], source, outputs=["junit.xml"]))
    with pytest.raises(EngineError, match="not a valid volume name"):
        await engine.run(RunSpec(base_image, ["true"], source, caches=[CacheMount("a b", "/c")]))
    with pytest.raises(EngineError, match="CA bundle"):
        await engine.run(RunSpec(base_image, ["true"], source, ca_bundle=tmp_path / "nope.pem"))


async def test_a_command_missing_from_the_image_is_an_engine_failure(
    engine: PodmanEngine, base_image: str, source: Path
) -> None:
    with pytest.raises(CommandFailedError) as caught:
        await engine.run(RunSpec(base_image, ["no-such-program"], source))
    assert caught.value.exit_code in (126, 127)
    assert "no-such-program" in str(caught.value)


async def test_cancelled_run_removes_its_container(
    engine: PodmanEngine, base_image: str, source: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"

    async def run_until_cancelled() -> None:
        await engine.run(RunSpec(base_image, ["sh", "-c", "sleep 60", marker], source))

    async with anyio.create_task_group() as group:
        group.start_soon(run_until_cancelled)
        with anyio.fail_after(30):
            while True:
                if await containers_running(marker):
                    break
                await anyio.sleep(0.1)
        group.cancel_scope.cancel()
    assert await containers_running(marker) == []


# -- build -----------------------------------------------------------------------


def write_dockerfile(context: Path, body: str) -> Path:
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(body)
    return context


async def test_build_with_args_labels_and_secret(
    engine: PodmanEngine, base_image: str, tag: str, tmp_path: Path
) -> None:
    context = write_dockerfile(
        tmp_path / "ctx",
        "ARG BASE_IMAGE=python:3.12-slim\nFROM ${BASE_IMAGE}\nARG GIT_SHA=dev\n"
        "RUN --mount=type=secret,id=API_TOKEN wc -c < /run/secrets/API_TOKEN > /token-length\n"
        "ENV APP_VERSION=${GIT_SHA}\n",
    )
    image = await engine.build(
        BuildSpec(
            context=context,
            build_args={"BASE_IMAGE": base_image, "GIT_SHA": "c0ffee"},
            labels={"org.opencontainers.image.revision": "c0ffee", "team": "delivery"},
            secrets=[TOKEN],
            tag=tag,
        )
    )
    assert image.local_ref == tag
    assert image.id.startswith("sha256:")
    info = json.loads(podman("image", "inspect", tag))[0]
    assert info["Id"] == image.id.removeprefix("sha256:")
    assert info["Labels"]["org.opencontainers.image.revision"] == "c0ffee"
    assert info["Labels"]["team"] == "delivery"
    assert "APP_VERSION=c0ffee" in info["Config"]["Env"]
    token_length = podman("run", "--rm", tag, "cat", "/token-length")
    assert token_length.strip() == str(len(TOKEN.reveal()))
    assert TOKEN.reveal() not in podman("image", "history", "--no-trunc", tag)
    assert TOKEN.reveal() not in json.dumps(info)


async def test_a_cancelled_build_leaves_no_temporary_directory(
    engine: PodmanEngine, base_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # buildah's own temporary directories land in the build's scratch directory,
    # which goes with the build however it ends (a cancel, a signal's cancellation)
    marker = uuid.uuid4().hex
    context = write_dockerfile(
        tmp_path / "ctx", f"FROM {base_image}\nRUN echo {marker} && sleep 60\n"
    )
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # this test's builds only
    before = build_scratch()

    async def build() -> None:
        await engine.build(BuildSpec(context=context))

    async with anyio.create_task_group() as group:
        group.start_soon(build)
        with anyio.fail_after(60):
            while True:
                if holds_buildah_files(build_scratch() - before):
                    break
                await anyio.sleep(0.1)
        group.cancel_scope.cancel()
    assert build_scratch() - before == set()


def build_scratch() -> set[Path]:
    """The podman engine's build scratch directories in the system's temp directory."""
    return set(Path(tempfile.gettempdir()).glob("conveyor-build-*"))


def holds_buildah_files(directories: set[Path]) -> bool:
    return any(next(d.glob("buildah*"), None) for d in directories)


async def test_a_changed_build_arg_reaches_env_despite_buildah_layer_cache(
    engine: PodmanEngine, base_image: str, tmp_path: Path
) -> None:
    """containers/buildah#5501: a cached ENV layer would keep the first value."""
    context = write_dockerfile(
        tmp_path / "ctx", f"FROM {base_image}\nARG GIT_SHA\nENV APP_VERSION=${{GIT_SHA}}\n"
    )
    names = [f"localhost/conveyor-test/arg:{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        for name in names:
            await engine.build(BuildSpec(context, build_args={"GIT_SHA": name[-10:]}, tag=name))
        for name in names:
            env = await tool("podman", "image", "inspect", name, "--format", "{{.Config.Env}}")
            assert f"APP_VERSION={name[-10:]}" in env
    finally:
        await anyio.run_process(["podman", "rmi", "-f", *names], check=False)


async def test_build_target_stage(
    engine: PodmanEngine, base_image: str, tag: str, tmp_path: Path
) -> None:
    context = write_dockerfile(
        tmp_path / "ctx",
        f"FROM {base_image} AS first\nENV STAGE=first\nFROM first AS second\nENV STAGE=second\n",
    )
    await engine.build(BuildSpec(context=context, target="first", tag=tag))
    assert "STAGE=first" in podman("image", "inspect", tag, "--format", "{{.Config.Env}}")


async def test_failing_build_raises_with_the_log_tail(
    engine: PodmanEngine, base_image: str, tmp_path: Path
) -> None:
    context = write_dockerfile(
        tmp_path / "ctx",
        f"FROM {base_image}\nRUN echo boom-7d1e >&2; exit 3\n",
    )
    with pytest.raises(CommandFailedError) as caught:
        await engine.build(BuildSpec(context=context))
    assert caught.value.exit_code != 0
    assert "boom-7d1e" in str(caught.value)
    assert "exit status 3" in str(caught.value)


async def test_build_refuses_missing_dockerfile_and_many_platforms(
    engine: PodmanEngine, tmp_path: Path
) -> None:
    with pytest.raises(EngineError, match=r"Dockerfile .* does not exist"):
        await engine.build(BuildSpec(context=tmp_path))
    write_dockerfile(tmp_path, "FROM scratch\n")
    with pytest.raises(EngineError, match="multi-platform"):
        await engine.build(BuildSpec(context=tmp_path, platforms=["linux/amd64", "linux/arm64"]))


# -- export, publish, inspect_remote ----------------------------------------------


@pytest.fixture
async def small_image(
    engine: PodmanEngine, base_image: str, tag: str, tmp_path: Path
) -> BuiltImage:
    context = write_dockerfile(tmp_path / "small", f"FROM {base_image}\nLABEL test={tag}\n")
    return await engine.build(BuildSpec(context=context, tag=tag))


async def test_export_tarball_is_a_docker_archive(
    engine: PodmanEngine, small_image: BuiltImage, tmp_path: Path
) -> None:
    dest = await engine.export_tarball(small_image, tmp_path / "out" / "image.tar")
    dest = await engine.export_tarball(small_image, dest)  # overwriting is fine
    with tarfile.open(dest) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    # saved by its id: no local name, which another build may have moved meanwhile
    assert manifest[0]["Config"] == f"{small_image.id.removeprefix('sha256:')}.json"
    assert manifest[0]["RepoTags"] == []
    assert manifest[0]["Layers"]


def serving_context(directory: Path, base_image: str, which: str) -> Path:
    """An image serving the file ``which`` (its own name) over HTTP on port 8000."""
    write_dockerfile(
        directory,
        f"FROM {base_image}\nWORKDIR /srv\nRUN echo {which} > which\n"
        'CMD ["python3", "-m", "http.server", "8000"]\n',
    )
    return directory


async def test_export_and_service_use_the_built_image_not_its_mutable_local_name(
    engine: PodmanEngine, base_image: str, tag: str, tmp_path: Path
) -> None:
    first = await engine.build(
        BuildSpec(context=serving_context(tmp_path / "first", base_image, "first"), tag=tag)
    )
    # another pipeline of the same commit on this host builds under the same name
    second = await engine.build(
        BuildSpec(context=serving_context(tmp_path / "second", base_image, "second"), tag=tag)
    )
    assert first.local_ref == second.local_ref == tag
    assert first.id != second.id

    dest = await engine.export_tarball(first, tmp_path / "image.tar")
    with tarfile.open(dest) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["Config"] == f"{first.id.removeprefix('sha256:')}.json"

    async with engine.service(ServiceSpec(first, 8000)) as endpoint, httpx.AsyncClient() as client:
        served = None
        with anyio.fail_after(30):
            while served is None:
                try:
                    served = (await client.get(f"{endpoint.url}/which")).text
                except httpx.TransportError:
                    await anyio.sleep(0.2)
    assert served == "first\n"


async def test_publish_returns_the_registry_digest_and_inspect_remote_sees_it(
    engine: PodmanEngine, small_image: BuiltImage, registry: str, tag: str
) -> None:
    address = f"{registry}/conveyor-test/hello:{uuid.uuid4().hex}"
    assert await engine.inspect_remote(address, insecure=True) is None

    pushed = await engine.publish(small_image, address, insecure=True)

    ref, _, digest = pushed.partition("@")
    assert ref == address
    inspected = json.loads(
        await tool("skopeo", "inspect", "--tls-verify=false", f"docker://{address}")
    )
    assert digest == inspected["Digest"]
    remote = await engine.inspect_remote(address, insecure=True)
    assert remote is not None
    assert remote.digest == digest
    assert remote.labels["test"] == tag
    assert (
        await engine.inspect_remote(f"{registry}/conveyor-test/hello:other", insecure=True) is None
    )
    assert await engine.inspect_remote(f"{registry}/never-pushed/repo:1", insecure=True) is None


async def test_inspect_remote_of_an_image_without_labels_has_none(
    engine: PodmanEngine, registry: str
) -> None:
    # pushed through the registry API: podman would add io.buildah.version
    repository = f"conveyor-test/bare-{uuid.uuid4().hex[:8]}"
    digest = push_image(registry, repository, "1", labels=None)

    remote = await engine.inspect_remote(f"{registry}/{repository}:1", insecure=True)

    assert remote == RemoteImage(digest, {})


async def test_inspect_remote_passes_credentials_and_a_refusal_is_not_a_missing_tag(
    engine: PodmanEngine, private_registry: PrivateRegistry
) -> None:
    registry = private_registry
    repository = f"conveyor-test/private-{uuid.uuid4().hex[:8]}"
    digest = push_image(
        registry.host, repository, "1", {"team": "blue"}, auth=(registry.user, registry.password)
    )
    address = f"{registry.host}/{repository}:1"
    auth = RegistryAuth(registry.user, Secret("REGISTRY_PASSWORD", registry.password))

    assert await engine.inspect_remote(address, insecure=True, auth=auth) == RemoteImage(
        digest, {"team": "blue"}
    )
    with pytest.raises(RegistryAuthError) as caught:
        await engine.inspect_remote(address, insecure=True)
    assert caught.value.status == 401
    assert "podman login" in str(caught.value)
    wrong = RegistryAuth(registry.user, Secret("REGISTRY_PASSWORD", "wrong-pw-4711"))
    with pytest.raises(RegistryAuthError) as caught:
        await engine.inspect_remote(address, insecure=True, auth=wrong)
    assert "wrong-pw-4711" not in str(caught.value)
    assert registry.password not in str(caught.value)


async def test_a_loopback_registry_is_plain_http_without_insecure(
    engine: PodmanEngine, small_image: BuiltImage, registry: str
) -> None:
    address = f"{registry}/conveyor-test/loopback:{uuid.uuid4().hex}"
    assert await engine.inspect_remote(address) is None
    pushed = await engine.publish(small_image, address)
    remote = await engine.inspect_remote(address)
    assert remote is not None
    assert pushed == f"{address}@{remote.digest}"


async def test_unreachable_registry(engine: PodmanEngine, small_image: BuiltImage) -> None:
    dead = f"127.0.0.1:{dead_port()}"
    with pytest.raises(UnreachableError) as caught:
        await engine.inspect_remote(f"{dead}/hello:1", insecure=True)
    assert caught.value.target == dead
    assert "connection refused" in caught.value.detail
    with pytest.raises(UnreachableError):
        await engine.publish(small_image, f"{dead}/hello:1", insecure=True)


# -- service ---------------------------------------------------------------------


async def test_service_serves_the_example_and_is_removed_afterwards(
    engine: PodmanEngine, base_image: str, tag: str
) -> None:
    image = await engine.build(
        BuildSpec(
            context=HELLO,
            build_args={"BASE_IMAGE": base_image, "GIT_SHA": "5ca1ab1e"},
            tag=tag,
        )
    )
    async with engine.service(ServiceSpec(image, 8080)) as endpoint:
        assert endpoint.host == "127.0.0.1"
        body = None
        async with httpx.AsyncClient() as client:
            with anyio.fail_after(30):
                while body is None:
                    try:
                        body = (await client.get(f"{endpoint.url}/version")).json()
                    except httpx.TransportError:
                        await anyio.sleep(0.2)
            health = await client.get(f"{endpoint.url}/healthz")
    assert body == {"app": "hello", "version": "5ca1ab1e"}
    assert health.text == "ok\n"
    names = podman("ps", "-a", "--filter", f"ancestor={tag}", "--format", "{{.Names}}")
    assert names.strip() == ""


async def test_a_service_whose_free_port_was_taken_meanwhile_starts_on_another(
    engine: PodmanEngine, base_image: str, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = await engine.build(
        BuildSpec(
            context=HELLO, build_args={"BASE_IMAGE": base_image, "GIT_SHA": "0ccup1ed"}, tag=tag
        )
    )
    # another process binds the port the kernel named free, before podman does: the
    # picker (the kernel's choice, which a test cannot steer) names it once
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        picks = iter([busy])
        real_pick = podman_engine.free_local_port
        monkeypatch.setattr(
            podman_engine, "free_local_port", lambda: next(picks, None) or real_pick()
        )
        async with engine.service(ServiceSpec(image, 8080)) as endpoint:
            assert endpoint.port != busy
            async with httpx.AsyncClient() as client:
                with anyio.fail_after(30):
                    while True:
                        try:
                            body = (await client.get(f"{endpoint.url}/version")).json()
                            break
                        except httpx.TransportError:
                            await anyio.sleep(0.2)
    assert body["version"] == "0ccup1ed"
    # the refused start's container is removed too
    names = podman("ps", "-a", "--filter", f"ancestor={tag}", "--format", "{{.Names}}")
    assert names.strip() == ""


# -- missing tools and doctor --------------------------------------------------------


async def test_missing_tools_are_named_with_an_install_hint(
    base_image: str, source: Path, tmp_path: Path
) -> None:
    engine = PodmanEngine(environ={"PATH": str(tmp_path)})
    with pytest.raises(ToolMissingError) as caught:
        await engine.run(RunSpec(base_image, ["true"], source))
    assert caught.value.tool == "podman"
    assert "scripts/setup.sh" in str(caught.value)
    with pytest.raises(ToolMissingError) as caught:
        await engine.publish(BuiltImage("sha256:" + "0" * 64, "x"), "127.0.0.1:1/x:1")
    assert caught.value.tool == "podman"


async def test_check_reports_tools_and_a_running_container(base_image: str, tmp_path: Path) -> None:
    report = await PodmanEngine().check(base_image)
    assert report.ok, report.detail
    versions = {tool.name: tool.version for tool in report.tools}
    assert versions["podman"] == podman("--version").split()[-1]
    assert all(versions[name] for name in ("podman", "buildah", "skopeo"))

    absent = await PodmanEngine(environ={"PATH": str(tmp_path)}).check(base_image)
    assert (absent.ok, absent.can_run, absent.detail) == (False, False, "podman is not installed")
    assert not any(tool.present for tool in absent.tools)

    no_image = await PodmanEngine().check("localhost/conveyor-test/absent:1")
    assert not no_image.can_run
    assert "localhost/conveyor-test/absent:1" in no_image.detail
