"""DaggerEngine against the Dagger API contract, offline.

Every operation runs for real through dagger-io; its queries reach
``DaggerApiDouble`` (tests/engines/dagger_query.py), which validates each one
against the Dagger v0.21.8 schema and answers from a table.  The tests then
assert what was sent: exec arguments, mounts, secrets as secret IDs, the
publish address and its platform variants.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import dagger
import graphql
import pytest
from dagger_query import DaggerApiDouble, ExecFailure, QueryFailure

from conveyor.config import load_config
from conveyor.config.models import Config, PolicyConfig
from conveyor.engines.dagger import DaggerEngine
from conveyor.engines.port import (
    BuildSpec,
    BuiltImage,
    CacheMount,
    Endpoint,
    Engine,
    RegistryAuth,
    RunSpec,
    ServiceSpec,
)
from conveyor.errors import (
    CommandFailedError,
    EngineError,
    PolicyError,
    ScanGateError,
    TagExistsError,
    UnreachableError,
)
from conveyor.policy.rules import enforce
from conveyor.secrets import Secret
from conveyor.stages.build import run_build
from conveyor.stages.context import DeliveryContext
from conveyor.stages.scan import run_scan

SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
TOKEN = Secret("PIP_TOKEN", "tok-Very-Secret-42")
PASSWORD = Secret("REGISTRY_PASSWORD", "pw-Also-Secret-99")
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def assert_plaintext_only_in_set_secret(double: DaggerApiDouble, *secrets: Secret) -> None:
    """A secret's value may appear in ``setSecret(plaintext:)`` and nowhere else."""
    set_secret = re.compile(r'setSecret\(name: "[^"]*", plaintext: "[^"]*"\)')
    sent = [set_secret.sub("setSecret(...)", text) for text in double.documents]
    for value in secrets:
        assert any(value.reveal() in text for text in double.documents), "secret never sent"
        assert not any(value.reveal() in text for text in sent), value.name


def is_secret(double: DaggerApiDouble, id_value: str, secret: Secret) -> bool:
    """Whether ``id_value`` is the ID of a ``setSecret`` query for ``secret``."""
    return f'setSecret(name: "{secret.name}"' in double.ids.get(id_value, "")


def test_the_engine_implements_the_port() -> None:
    assert isinstance(DaggerEngine(DaggerApiDouble().client()), Engine)


@pytest.mark.anyio
async def test_run_mounts_source_caches_env_and_secrets_and_keeps_the_exit_code(
    tmp_path: Path,
) -> None:
    double = DaggerApiDouble(
        answers={
            "exitCode": 3,
            "stdout": f"1 failed, token was {TOKEN.reveal()}",
            "stderr": "E   assert 1 == 2",
            "export": "ok",
        }
    )
    engine = DaggerEngine(double.client())
    spec = RunSpec(
        image="python:3.12-slim",
        command=["python", "-m", "pytest", "-q", "--junitxml=junit.xml"],
        source=tmp_path,
        workdir="/src",
        env={"CI": "true"},
        secrets=[TOKEN],
        caches=[CacheMount("pip", "/root/.cache/pip")],
        outputs=["junit.xml"],
        export_dir=tmp_path / "reports",
    )

    result = await engine.run(spec)

    assert result.exit_code == 3
    assert result.stdout == "1 failed, token was ***"
    assert result.stderr == "E   assert 1 == 2"
    assert result.exported == {"junit.xml": tmp_path / "reports" / "junit.xml"}
    assert double.calls("from") == [{"address": "python:3.12-slim"}]
    assert double.calls("withExec") == [
        {"args": ["python", "-m", "pytest", "-q", "--junitxml=junit.xml"], "expect": "ANY"}
    ]
    (mount,) = double.calls("withMountedDirectory")
    assert mount["path"] == "/src"
    assert double.made_by(mount["source"], "directory")
    assert f'path: "{tmp_path}"' in double.ids[mount["source"]]
    assert double.calls("withWorkdir") == [{"path": "/src"}]
    assert double.calls("withEnvVariable") == [{"name": "CI", "value": "true"}]
    (cache,) = double.calls("withMountedCache")
    assert cache["path"] == "/root/.cache/pip"
    assert 'cacheVolume(key: "pip")' in double.ids[cache["cache"]]
    (secret,) = double.calls("withSecretVariable")
    assert secret["name"] == "PIP_TOKEN"
    assert is_secret(double, secret["secret"], TOKEN)
    assert_plaintext_only_in_set_secret(double, TOKEN)
    assert double.calls("file") == [{"path": "/src/junit.xml"}]
    assert double.calls("export") == [{"path": str(tmp_path / "reports" / "junit.xml")}]


@pytest.mark.anyio
async def test_run_mounts_the_ca_bundle_and_skips_outputs_not_produced(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    double = DaggerApiDouble(
        answers={"exitCode": 0, "stdout": "", "stderr": ""},
        failures=[QueryFailure("junit.xml", "lstat /src/junit.xml: no such file or directory")],
    )
    spec = RunSpec(
        image="python:3.12-slim",
        command=["true"],
        source=tmp_path,
        outputs=["junit.xml"],
        export_dir=tmp_path / "out",
        ca_bundle=bundle,
    )

    result = await DaggerEngine(double.client()).run(spec)

    assert result.exported == {}
    (ca,) = double.calls("withMountedFile")
    assert ca["path"] == "/etc/ssl/certs/ca-certificates.crt"
    assert double.made_by(ca["source"], "host")
    assert f'path: "{bundle}"' in double.ids[ca["source"]]


@pytest.mark.anyio
async def test_run_killed_by_a_signal_is_a_result_not_an_error(tmp_path: Path) -> None:
    double = DaggerApiDouble(
        failures=[ExecFailure("withExec", ["sleep", "999"], 137, stdout="", stderr="Killed")]
    )
    spec = RunSpec(image="alpine:3.20", command=["sleep", "999"], source=tmp_path)

    result = await DaggerEngine(double.client()).run(spec)

    assert (result.exit_code, result.stderr) == (137, "Killed")


@pytest.mark.anyio
async def test_run_reuses_a_directory_already_in_the_engine(tmp_path: Path) -> None:
    double = DaggerApiDouble(answers={"exitCode": 0, "stdout": "", "stderr": ""})
    client = double.client()
    source = client.git("https://example.com/app.git").head().tree()
    engine = DaggerEngine(client, known_sources={tmp_path: source})
    spec = RunSpec(image="alpine:3.20", command=["ls"], source=tmp_path / "app")

    await engine.run(spec)

    assert double.calls("host") == []
    (mount,) = double.calls("withMountedDirectory")
    assert double.made_by(mount["source"], "tree")
    assert 'directory(path: "app")' in double.ids[mount["source"]]


def build_spec(tmp_path: Path, platforms: tuple[str, ...] = ()) -> BuildSpec:
    return BuildSpec(
        context=tmp_path,
        dockerfile="docker/app.Dockerfile",
        build_args={"VERSION": SHA},
        labels={"org.opencontainers.image.revision": SHA},
        target="runtime",
        platforms=platforms,
        secrets=[TOKEN],
        tag=f"registry.example.com/hello:{SHA}",
    )


@pytest.mark.anyio
async def test_build_passes_dockerfile_args_target_platforms_secrets_and_labels(
    tmp_path: Path,
) -> None:
    double = DaggerApiDouble()
    engine = DaggerEngine(double.client())

    image = await engine.build(build_spec(tmp_path, ("linux/amd64", "linux/arm64")))

    builds = double.calls("dockerBuild")
    assert [b["platform"] for b in builds] == ["linux/amd64", "linux/arm64"]
    for build in builds:
        assert build["dockerfile"] == "docker/app.Dockerfile"
        assert build["buildArgs"] == [{"name": "VERSION", "value": SHA}]
        assert build["target"] == "runtime"
        assert len(build["secrets"]) == 1
        assert is_secret(double, build["secrets"][0], TOKEN)
    assert double.calls("withLabel") == 2 * [
        {"name": "org.opencontainers.image.revision", "value": SHA}
    ]
    assert_plaintext_only_in_set_secret(double, TOKEN)
    # no local image store: the name is a label for logs, not a pullable reference
    assert re.fullmatch(r"dagger-container-[0-9a-f]{12}", image.local_ref)
    assert image.platforms == ("linux/amd64", "linux/arm64")
    assert image.id in double.ids


@pytest.mark.anyio
async def test_a_failed_build_is_a_command_failure_with_the_stderr_tail(tmp_path: Path) -> None:
    stderr = "\n".join(f"step {n}" for n in range(40)) + f"\nerror: bad token {TOKEN.reveal()}"
    double = DaggerApiDouble(
        failures=[ExecFailure("dockerBuild", ["/bin/sh", "-c", "pip install ."], 1, stderr=stderr)]
    )

    with pytest.raises(CommandFailedError) as caught:
        await DaggerEngine(double.client()).build(build_spec(tmp_path))

    assert caught.value.exit_code == 1
    assert caught.value.command == ("/bin/sh", "-c", "pip install .")
    text = str(caught.value)
    assert "error: bad token ***" in text
    assert TOKEN.reveal() not in text
    assert "step 39" in text
    assert "step 5\n" not in text


async def built(
    double: DaggerApiDouble, tmp_path: Path, platforms: tuple[str, ...] = ()
) -> tuple[DaggerEngine, BuiltImage]:
    engine = DaggerEngine(double.client())
    return engine, await engine.build(build_spec(tmp_path, platforms))


@pytest.mark.anyio
async def test_export_tarball_carries_every_platform_variant(tmp_path: Path) -> None:
    double = DaggerApiDouble(answers={"export": "ok"})
    engine, image = await built(double, tmp_path, ("linux/amd64", "linux/arm64"))
    dest = tmp_path / "out" / "image.tar"

    assert await engine.export_tarball(image, dest) == dest

    (tarball,) = double.calls("asTarball")
    assert len(tarball["platformVariants"]) == 2
    assert all(double.made_by(v, "dockerBuild") for v in tarball["platformVariants"])
    assert double.calls("export") == [{"path": str(dest)}]


@pytest.mark.anyio
async def test_publish_pushes_the_sha_tag_with_registry_auth_and_returns_the_digest(
    tmp_path: Path,
) -> None:
    address = f"registry.example.com/hello:{SHA}"
    double = DaggerApiDouble(answers={"publish": f"{address}@{DIGEST}"})
    engine, image = await built(double, tmp_path)

    published = await engine.publish(image, address, auth=RegistryAuth("ci-bot", PASSWORD))

    assert published == f"{address}@{DIGEST}"
    (publish,) = double.calls("publish")
    assert publish == {"address": address}
    pinned = enforce(published, PolicyConfig(allowed_registries=[r"^registry\.example\.com/.+$"]))
    assert (pinned.tag, pinned.digest) == (SHA, DIGEST)
    (auth,) = double.calls("withRegistryAuth")
    assert (auth["address"], auth["username"]) == (address, "ci-bot")
    assert is_secret(double, auth["secret"], PASSWORD)
    assert_plaintext_only_in_set_secret(double, PASSWORD, TOKEN)


@pytest.mark.anyio
async def test_publish_of_several_platforms_pushes_one_index_and_reads_it_back(
    tmp_path: Path,
) -> None:
    address = f"registry.example.com/hello:{SHA}"
    double = DaggerApiDouble(answers={"publish": f"{address}@{DIGEST}"})
    double.answers["platform"] = lambda node: asked_platform(double)
    engine, image = await built(double, tmp_path, ("linux/amd64", "linux/arm64"))

    published = await engine.publish(image, address, auth=RegistryAuth("ci-bot", PASSWORD))

    assert published == f"{address}@{DIGEST}"
    (publish,) = double.calls("publish")
    assert publish["address"] == address
    assert len(publish["platformVariants"]) == 2
    assert all(double.made_by(v, "dockerBuild") for v in publish["platformVariants"])
    # each platform is resolved from the pushed digest through the engine, with the credentials
    readback = [d for d in double.documents if "platform\n" in d and "publish" not in d]
    assert len(readback) == 2
    assert double.calls("container")[-2:] == [
        {"platform": "linux/amd64"},
        {"platform": "linux/arm64"},
    ]
    assert double.calls("from") == [{"address": f"{address}@{DIGEST}"}] * 2
    assert [c["address"] for c in double.calls("withRegistryAuth")] == [address] + [
        f"{address}@{DIGEST}"
    ] * 2


def asked_platform(double: DaggerApiDouble) -> str:
    """An index holding every platform: the config served is of the platform asked for."""
    found = re.search(r'container\(platform: "([^"]+)"\)', double.current)
    assert found, double.current
    return found.group(1)


@pytest.mark.anyio
@pytest.mark.parametrize("setting", ["fail", "warn"])
async def test_a_platform_the_registry_does_not_serve_fails_or_warns(
    tmp_path: Path, setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # what a real engine showed: amd64 + arm64 over an amd64-only base published one
    # amd64 manifest; asked for arm64, the registry serves that manifest, whose
    # config says linux/amd64
    address = f"registry.example.com/hello:{SHA}"
    double = DaggerApiDouble(answers={"publish": f"{address}@{DIGEST}", "platform": "linux/amd64"})
    engine = DaggerEngine(double.client(), missing_platforms=setting)  # type: ignore[arg-type]
    image = await engine.build(build_spec(tmp_path, ("linux/amd64", "linux/arm64")))

    if setting == "fail":
        with pytest.raises(EngineError) as caught:
            await engine.publish(image, address)
        assert "published without linux/arm64" in str(caught.value)
        assert "serves linux/amd64" in str(caught.value)
        assert caught.value.hint is not None
        assert 'app.missing_platforms = "warn"' in caught.value.hint
    else:
        assert await engine.publish(image, address) == f"{address}@{DIGEST}"
        err = capsys.readouterr().err
        assert err.startswith(f"warning: {address}@{DIGEST} was published without linux/arm64")


@pytest.mark.anyio
async def test_an_index_without_the_platform_is_a_missing_platform(tmp_path: Path) -> None:
    address = f"registry.example.com/hello:{SHA}"
    double = DaggerApiDouble(
        answers={"publish": f"{address}@{DIGEST}", "platform": "linux/amd64"},
        failures=[
            QueryFailure(
                'container(platform: "linux/arm64")',
                f'failed to resolve image "{address}@{DIGEST}" (platform: "linux/arm64"): '
                f"manifest {DIGEST}: not found",
            )
        ],
    )
    engine, image = await built(double, tmp_path, ("linux/amd64", "linux/arm64"))

    with pytest.raises(EngineError, match="published without linux/arm64"):
        await engine.publish(image, address)


@pytest.mark.anyio
async def test_a_readback_the_engine_cannot_make_is_its_error_not_a_missing_platform(
    tmp_path: Path,
) -> None:
    address = f"registry.example.com/hello:{SHA}"
    double = DaggerApiDouble(
        answers={"publish": f"{address}@{DIGEST}"},
        failures=[QueryFailure("platform\n", DIAL_REFUSED.format(ref=f"{address}@{DIGEST}"))],
    )
    engine, image = await built(double, tmp_path, ("linux/arm64",))

    with pytest.raises(UnreachableError, match=r"registry\.example\.com"):
        await engine.publish(image, address)


DIAL_REFUSED = (
    'failed to resolve image "{ref}" (platform: "linux/amd64"): failed to do request: '
    'Head "https://registry.example.com/v2/hello/manifests/x": '
    "dial tcp 10.0.0.7:443: connect: connection refused"
)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "address",
    [
        "registry.example.com/hello:latest",
        "registry.example.com/hello",
        "registry.example.com/hello:3f2a9c1",
        f"registry.example.com/hello:{SHA}@{DIGEST}",
    ],
)
async def test_publish_refuses_an_address_without_the_full_sha_tag(
    tmp_path: Path, address: str
) -> None:
    double = DaggerApiDouble()
    engine, image = await built(double, tmp_path)

    with pytest.raises(PolicyError, match="full git SHA"):
        await engine.publish(image, address)

    assert double.calls("publish") == []


@pytest.mark.anyio
async def test_publish_that_returns_no_digest_is_an_error(tmp_path: Path) -> None:
    double = DaggerApiDouble(answers={"publish": "registry.example.com/hello"})
    engine, image = await built(double, tmp_path)

    with pytest.raises(EngineError, match=r"returned 'registry\.example\.com/hello'"):
        await engine.publish(image, f"registry.example.com/hello:{SHA}")


@pytest.mark.anyio
async def test_a_refused_push_to_a_plain_http_registry_says_how_to_allow_it(
    tmp_path: Path,
) -> None:
    # the engine's push error, as containerd's client words an HTTPS request to an HTTP server
    message = (
        "failed to export: failed to push registry.lan:5000/hello:" + SHA + ": failed to do "
        'request: Head "https://registry.lan:5000/v2/hello/blobs/sha256:00": '
        "http: server gave HTTP response to HTTPS client"
    )
    double = DaggerApiDouble(failures=[QueryFailure("publish", message)])
    engine, image = await built(double, tmp_path)

    with pytest.raises(UnreachableError) as caught:
        await engine.publish(image, f"registry.lan:5000/hello:{SHA}", insecure=True)

    assert caught.value.target == "registry.lan:5000"
    assert "HTTP response to HTTPS client" in str(caught.value)
    assert caught.value.hint is not None
    assert '{"registries": {"registry.lan:5000": {"http": true}}}' in caught.value.hint
    assert '[registry."registry.lan:5000"] http = true' in caught.value.hint
    assert "[registries." not in caught.value.hint


@pytest.mark.anyio
async def test_an_image_from_another_engine_is_refused(tmp_path: Path) -> None:
    engine = DaggerEngine(DaggerApiDouble().client())
    foreign = BuiltImage(id="sha256:0123", local_ref="localhost/hello:dev")

    with pytest.raises(EngineError, match="was not built by this Dagger engine"):
        await engine.export_tarball(foreign, tmp_path / "x.tar")


@pytest.mark.anyio
async def test_service_on_the_host_goes_through_a_tunnel(tmp_path: Path) -> None:
    double = DaggerApiDouble(answers={"endpoint": "localhost:41234"})
    engine, image = await built(double, tmp_path)

    async with engine.service(ServiceSpec(image, 8080, env={"PORT": "8080"})) as endpoint:
        assert endpoint == Endpoint("localhost", 41234)
        assert double.calls("stop") == []

    assert double.calls("withExposedPort") == [{"port": 8080}]
    assert double.calls("asService") == [{"useEntrypoint": True}]
    assert {"name": "PORT", "value": "8080"} in double.calls("withEnvVariable")
    (tunnel,) = double.calls("tunnel")
    assert double.made_by(tunnel["service"], "asService")
    assert len(double.calls("stop")) == 1


@pytest.mark.anyio
async def test_service_inside_a_module_answers_on_its_own_endpoint(tmp_path: Path) -> None:
    double = DaggerApiDouble(answers={"endpoint": "3ak4e1b5rm0ee.abc.dagger.local:8080"})
    engine = DaggerEngine(double.client(), service_access="direct")
    image = await engine.build(build_spec(tmp_path))

    async with engine.service(ServiceSpec(image, 8080)) as endpoint:
        assert endpoint.url == "http://3ak4e1b5rm0ee.abc.dagger.local:8080"

    assert double.calls("tunnel") == []
    assert double.calls("endpoint") == [{"port": 8080}]
    assert len(double.calls("start")) == 1
    assert len(double.calls("stop")) == 1


TRIVY_IMAGE = "aquasec/trivy:0.69.1"
TRIVY_REPORT = Path(__file__).parents[1] / "scan" / "resources" / "trivy" / "debian-buster.json"


def exported_files(node: graphql.FieldNode) -> str:
    """Answer ``export`` as the engine would: write what the exported path should hold.

    The image tarball (``asTarball``) becomes a small tar archive; Trivy's
    report (``/scan/trivy.json`` of the exec) is the recorded real report.
    """
    (path,) = (
        str(graphql.value_from_ast_untyped(arg.value))
        for arg in node.arguments or ()
        if arg.name.value == "path"
    )
    dest = Path(path)
    if dest.name == "image.tar":
        with tarfile.open(dest, "w") as tar:
            tar.addfile(tarfile.TarInfo("oci-layout"))
    elif dest.name == "trivy.json":
        dest.write_text(TRIVY_REPORT.read_text())
    return path


def scan_config(root: Path) -> Config:
    """An app whose scan runs Trivy's image (``stages.scan.image``)."""
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n'
        '[registry]\nhost = "registry.example.com"\nrepository = "hello"\n\n'
        f'[stages.scan]\nimage = "{TRIVY_IMAGE}"\n'
    )
    return load_config(root / "conveyor.toml", env={})


@pytest.mark.anyio
async def test_scan_runs_trivys_image_on_the_tarball_with_the_db_in_a_cache_volume(
    tmp_path: Path,
) -> None:
    double = DaggerApiDouble(
        answers={"exitCode": 0, "stdout": "", "stderr": "", "export": exported_files}
    )
    engine = DaggerEngine(double.client())
    ctx = DeliveryContext(scan_config(tmp_path / "app"), engine, SHA, tmp_path / "artifacts")
    scan_dir = ctx.artifacts / "scan"
    built = await run_build(ctx, {})

    with pytest.raises(ScanGateError) as caught:
        await run_scan(ctx, {"build": built})

    assert caught.value.blocking == ("CVE-2019-18224",)
    # The tarball: the built image as an archive, exported into the scan directory...
    assert len(double.calls("asTarball")) == 1
    assert double.calls("export")[0] == {"path": str(scan_dir / "image.tar")}
    # ...which is mounted in Trivy's image at /scan, the DB cache volume beside it.
    assert {"address": TRIVY_IMAGE} in double.calls("from")
    (mount,) = double.calls("withMountedDirectory")
    assert mount["path"] == "/scan"
    assert double.made_by(mount["source"], "host")
    assert f'path: "{scan_dir}"' in double.ids[mount["source"]]
    assert double.calls("withWorkdir") == [{"path": "/scan"}]
    (cache,) = double.calls("withMountedCache")
    assert cache["path"] == "/root/.cache/trivy"
    assert 'cacheVolume(key: "trivy-db")' in double.ids[cache["cache"]]
    assert double.calls("withExec") == [
        {
            "args": [
                "trivy",
                "image",
                "--input",
                "/scan/image.tar",
                "--format",
                "json",
                "--output",
                "/scan/trivy.json",
                "--quiet",
                "--scanners",
                "vuln,secret",
                "--severity",
                "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL",
                "--timeout",
                "1800s",
                "--cache-dir",
                "/root/.cache/trivy",
            ],
            "expect": "ANY",
        }
    ]
    # Trivy's report comes back out of the container and is gated and turned into SARIF.
    assert {"path": "/scan/trivy.json"} in double.calls("file")
    assert double.calls("export")[1] == {"path": str(scan_dir / "trivy.json")}
    sarif = json.loads((scan_dir / "trivy.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == [
        "CVE-2019-18276",
        "CVE-2019-18224",
    ]
    assert not (scan_dir / "image.tar").exists()


@pytest.mark.anyio
async def test_scan_in_a_module_loads_the_scan_directory_from_the_module_workdir(
    tmp_path: Path,
) -> None:
    double = DaggerApiDouble(
        answers={"exitCode": 0, "stdout": "", "stderr": "", "export": exported_files}
    )
    client = double.client()
    config = scan_config(tmp_path / "source")
    source = client.git("https://example.com/app.git").head().tree()
    engine = DaggerEngine(client, known_sources={config.root: source}, module_workdir=tmp_path)
    ctx = DeliveryContext(config, engine, SHA, tmp_path / "artifacts")
    built = await run_build(ctx, {})

    with pytest.raises(ScanGateError):
        await run_scan(ctx, {"build": built})

    # No host in a module: the tarball's directory comes from currentModule.workdir.
    assert double.calls("host") == []
    (mount,) = double.calls("withMountedDirectory")
    assert mount["path"] == "/scan"
    assert double.made_by(mount["source"], "currentModule")
    assert 'path: "artifacts/scan"' in double.ids[mount["source"]]


@pytest.mark.anyio
async def test_a_failing_trivy_container_is_a_command_failure(tmp_path: Path) -> None:
    double = DaggerApiDouble(
        answers={
            "exitCode": 1,
            "stdout": "",
            "stderr": "FATAL\tinit error: DB error: failed to download vulnerability DB",
            "export": exported_files,
        },
        failures=[QueryFailure('path: "/scan/trivy.json"', "lstat /scan/trivy.json: no such file")],
    )
    engine = DaggerEngine(double.client())
    ctx = DeliveryContext(scan_config(tmp_path / "app"), engine, SHA, tmp_path / "artifacts")
    built = await run_build(ctx, {})

    with pytest.raises(CommandFailedError) as caught:
        await run_scan(ctx, {"build": built})

    assert caught.value.exit_code == 1
    assert caught.value.command[:2] == ("trivy", "image")
    assert "failed to download vulnerability DB" in str(caught.value)
    assert not (ctx.artifacts / "scan" / "trivy.json").exists()


@pytest.mark.anyio
async def test_a_field_missing_from_the_engine_schema_fails_offline() -> None:
    # dagger-io 0.21.11 still generates loadContainerFromID; the v0.21.8 engine
    # loads objects through node(id:) and has no such field.
    client = DaggerApiDouble().client()

    with pytest.raises(dagger.InvalidQueryError):
        await client.load_container_from_id(dagger.ContainerID("id-1")).id()


def test_the_double_validates_documents_against_the_schema() -> None:
    double = DaggerApiDouble()

    with pytest.raises(
        AssertionError, match="Cannot query field 'nonExistent' on type 'Container'"
    ):
        double.answer(graphql.parse("{ container { nonExistent } }"))
    with pytest.raises(AssertionError, match=r"Container\.withExec\(args:\)' .* is required"):
        double.answer(graphql.parse("{ container { withExec(expect: ANY) { id } } }"))
    assert double.documents == []


# -- the tag check, through the engine ---------------------------------------------------

ADDRESS = f"127.0.0.1:5055/hello:{SHA}"
NOT_FOUND = f'failed to resolve image "{ADDRESS}" (platform: "linux/amd64"): {ADDRESS}: not found'


@pytest.mark.anyio
async def test_inspect_remote_resolves_the_tag_through_the_engine_with_the_credentials() -> None:
    double = DaggerApiDouble(
        answers={"imageRef": f"{ADDRESS}@{DIGEST}", "label": SHA, "plaintext": "unused"}
    )
    engine = DaggerEngine(double.client())

    found = await engine.inspect_remote(ADDRESS, auth=RegistryAuth("ci-bot", PASSWORD))

    assert found is not None
    assert found.digest == DIGEST
    assert found.labels == {"org.opencontainers.image.revision": SHA}
    assert double.calls("from") == [{"address": ADDRESS}] * 2
    assert double.calls("label") == [{"name": "org.opencontainers.image.revision"}]
    (auth, *_) = double.calls("withRegistryAuth")
    assert (auth["address"], auth["username"]) == (ADDRESS, "ci-bot")
    assert is_secret(double, auth["secret"], PASSWORD)
    assert_plaintext_only_in_set_secret(double, PASSWORD)


@pytest.mark.anyio
async def test_only_the_engines_not_found_for_this_reference_means_absent() -> None:
    double = DaggerApiDouble(failures=[QueryFailure("imageRef", NOT_FOUND)])

    assert await DaggerEngine(double.client()).inspect_remote(ADDRESS) is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("message", "error"),
    [
        # the registry cannot be reached from the engine
        (
            f'failed to resolve image "{ADDRESS}" (platform: "linux/amd64"): failed to do '
            f'request: Head "http://127.0.0.1:5055/v2/hello/manifests/{SHA}": '
            "dial tcp 127.0.0.1:5055: connect: connection refused",
            UnreachableError,
        ),
        # credentials refused: a private registry may answer so for a missing tag too
        (
            f'failed to resolve image "{ADDRESS}" (platform: "linux/amd64"): pull access '
            "denied, repository does not exist or may require authorization: server message: "
            "insufficient_scope: authorization failed",
            EngineError,
        ),
        # "not found" of another reference (a mirror's base image, say) is not this tag's
        (
            'failed to resolve image "127.0.0.1:5055/other:1" (platform: "linux/amd64"): '
            "127.0.0.1:5055/other:1: not found",
            EngineError,
        ),
        # a registry answering 500 after a 404 elsewhere
        (
            f'failed to resolve image "{ADDRESS}" (platform: "linux/amd64"): pulling from host '
            "127.0.0.1:5055 failed with status code [manifests "
            f"{SHA}]: 500 Internal Server Error",
            EngineError,
        ),
    ],
)
async def test_any_other_engine_answer_stops_the_check(
    message: str, error: type[Exception]
) -> None:
    double = DaggerApiDouble(failures=[QueryFailure("imageRef", message)])

    with pytest.raises(error):
        await DaggerEngine(double.client()).inspect_remote(ADDRESS)


def publish_config(tmp_path: Path) -> Config:
    (tmp_path / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "127.0.0.1:5055"\nrepository = "hello"\n'
        "insecure = true\n",
        encoding="utf-8",
    )
    return load_config(tmp_path / "conveyor.toml", env={})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (NOT_FOUND, "pushed"),
        (DIAL_REFUSED.format(ref=ADDRESS), UnreachableError),
        (None, TagExistsError),
    ],
)
async def test_the_publish_stage_pushes_only_after_a_clean_not_found(
    tmp_path: Path, failure: str | None, expected: object
) -> None:
    from conveyor.stages.publish import run_publish  # noqa: PLC0415

    double = DaggerApiDouble(
        answers={
            "imageRef": f"{ADDRESS}@{DIGEST}",
            "label": "0" * 40,  # another commit's image under the tag
            "publish": f"{ADDRESS}@{DIGEST}",
        },
        failures=[QueryFailure("imageRef", failure)] if failure else [],
    )
    engine = DaggerEngine(double.client())
    image = await engine.build(build_spec(tmp_path))
    ctx = DeliveryContext(
        config=publish_config(tmp_path), engine=engine, sha=SHA, artifacts=tmp_path / "a"
    )
    build_outputs = {"image.id": image.id, "image.local_ref": image.local_ref}

    if expected == "pushed":
        outputs = await run_publish(ctx, {"build": build_outputs})
        assert outputs["image.ref"] == f"{ADDRESS}@{DIGEST}"
        assert double.calls("publish") == [{"address": ADDRESS}]
    else:
        assert isinstance(expected, type)
        with pytest.raises(expected):
            await run_publish(ctx, {"build": build_outputs})
        assert double.calls("publish") == []
