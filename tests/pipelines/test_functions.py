"""The module's functions call the real core, with the Dagger engine replaced by its API double.

Each function is called as the module runtime calls it, with ``dag`` pointed
at ``DaggerApiDouble`` (tests/engines/dagger_query.py), which validates every
query against the Dagger v0.21.8 schema.  The double answers ``export`` of the
``source`` argument without writing files, so each test first writes the
source the export would produce into the function's scratch directory.
Everything else is real: the configuration loader, the scheduler, the
stages, git, a bare manifest repository and the GitHub API double on
127.0.0.1 for ``promote``.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import dagger
import pytest
from conveyor_pipelines import Conveyor
from conveyor_pipelines.session import ARTIFACTS_DIR, GITOPS_DIR, SOURCE_DIR
from dagger_kubectl import kubectl_container_double
from dagger_query import DaggerApiDouble, QueryFailure
from forge.forge_doubles import TOKEN, GitHubApiDouble
from promotion_repo import BRANCH, DIGEST_A, SHA_A, Remote, make_remote
from registry_api import PrivateRegistry

from conveyor.cli.app import invoke
from conveyor.engines.dagger_render import KUBECTL_IMAGE
from conveyor.errors import ConfigError, ConveyorError, TestsFailedError, UnknownStageError

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "tests" / "resources" / "manifests"
SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
IMAGE_A = f"myacr.azurecr.io/hello:{SHA_A}@{DIGEST_A}"

APP = """
[app]
name = "hello"

[registry]
host = "myacr.azurecr.io"
repository = "hello"

[stages.test]
image = "python:3.12-slim"
command = ["python", "-m", "pytest", "-q", "--junitxml=junit.xml"]
junit = "junit.xml"

[stages.scan]
enabled = false

[stages.smoke]
enabled = false
"""


def module() -> Any:
    """The module's object; typed loosely because dagger-io's ``@function`` overloads
    lose the return type of async methods."""
    return Conveyor()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The function's scratch directory (the runtime's working directory)."""
    work = tmp_path / "work"
    (work / SOURCE_DIR).mkdir(parents=True)
    monkeypatch.chdir(work)
    return work


def write_source(workdir: Path, config: str) -> Path:
    """What exporting the ``source`` argument would put in the scratch directory."""
    source = workdir / SOURCE_DIR
    (source / "conveyor.toml").write_text(config, encoding="utf-8")
    (source / "Dockerfile").write_text("FROM python:3.12-slim\n", encoding="utf-8")
    return source


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    manifests = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, manifests)
    return make_remote(manifests, tmp_path)


@pytest.fixture
def github() -> Iterator[GitHubApiDouble]:
    with GitHubApiDouble("acme", "manifests", TOKEN) as double:
        yield double


def gitops_config(remote: Remote, forge_url: str, production: str = "pull-request") -> str:
    return f"""{APP}
[gitops]
repo = "{remote.bare}"
branch = "main"
token_env = "GITOPS_TOKEN"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"
promotion = "commit"

[gitops.environments.production]
path = "apps/hello/overlays/production"
promotion = "{production}"

[gitops.forge]
kind = "github"
project = "acme/manifests"
api_url = "{forge_url}"
labels = ["promotion"]
"""


@pytest.mark.anyio
async def test_promote_opens_a_pull_request_through_the_core_with_the_secret_token(
    workdir: Path, remote: Remote, github: GitHubApiDouble
) -> None:
    write_source(workdir, gitops_config(remote, github.url))
    double = DaggerApiDouble(answers={"export": "ok", "plaintext": TOKEN})
    main_before = remote.sha()

    with double.as_dag() as dag:
        token = dag.set_secret("gitops-token", TOKEN)
        out = await module().promote(source=dag.directory(), to="production", git_token=token)

    assert out == (
        "production: opened pull request #1 https://github.com/acme/manifests/pull/1\n"
        f"  branch: {BRANCH}\n"
        f"  image: no image -> {IMAGE_A}\n"
    )
    # production changed only through the pull request: main is untouched
    assert remote.sha() == main_before
    assert remote.image(BRANCH, "apps/hello/overlays/production/kustomization.yaml") is not None
    # the forge received the token of the dagger.Secret, read by its plaintext query
    assert [r.method for r in github.requests] == ["GET", "POST", "POST"]
    assert github.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert double.calls("export") == [{"path": str(workdir / SOURCE_DIR)}]
    assert any("plaintext" in text for text in double.documents)


@pytest.mark.anyio
async def test_promote_refuses_production_by_direct_commit(
    workdir: Path, remote: Remote, github: GitHubApiDouble
) -> None:
    write_source(workdir, gitops_config(remote, github.url, production="commit"))
    main_before = remote.sha()

    with (
        DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag,
        pytest.raises(ConfigError, match="'production' is protected"),
    ):
        await module().promote(source=dag.directory(), to="production")

    assert remote.sha() == main_before
    assert github.requests == []


@pytest.mark.anyio
async def test_a_token_without_a_variable_to_hold_it_is_a_config_error(
    workdir: Path, remote: Remote, github: GitHubApiDouble
) -> None:
    config = gitops_config(remote, github.url).replace('token_env = "GITOPS_TOKEN"\n', "")
    write_source(workdir, config)

    with (
        DaggerApiDouble(answers={"export": "ok", "plaintext": TOKEN}).as_dag() as dag,
        pytest.raises(ConfigError) as caught,
    ):
        await module().promote(
            source=dag.directory(), to="production", git_token=dag.set_secret("t", TOKEN)
        )

    assert caught.value.field == "gitops.token_env"
    assert TOKEN not in str(caught.value)
    assert github.requests == []


@pytest.mark.anyio
async def test_build_returns_the_built_container(workdir: Path) -> None:
    write_source(workdir, APP)
    double = DaggerApiDouble(answers={"export": "ok"})

    with double.as_dag() as dag:
        container = await module().build(source=dag.directory(), sha=SHA)
        image_id = await container.id()

    assert isinstance(container, dagger.Container)
    assert double.made_by(image_id, "dockerBuild")
    builds = double.calls("dockerBuild")
    assert len(builds) == 1
    assert {"name": "GIT_SHA", "value": SHA} in builds[0]["buildArgs"]


@pytest.mark.anyio
async def test_a_failing_test_stage_fails_the_test_function(workdir: Path) -> None:
    write_source(workdir, APP)
    double = DaggerApiDouble(answers={"export": "ok", "exitCode": 1, "stdout": "", "stderr": "E"})

    with double.as_dag() as dag, pytest.raises(TestsFailedError):
        await module().test(source=dag.directory())

    assert (workdir / ARTIFACTS_DIR / "test" / "output.log").read_text() == "E"


@pytest.mark.anyio
async def test_manifest_without_gitops_says_which_stage_is_missing(workdir: Path) -> None:
    write_source(workdir, APP)

    with (
        DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag,
        pytest.raises(ConfigError) as caught,
    ):
        await module().manifest(source=dag.directory(), sha=SHA)

    assert caught.value.field == "stages.manifest"
    assert "not in this configuration's pipeline" in str(caught.value)
    assert "test, build, publish, report" in str(caught.value)


@pytest.mark.anyio
async def test_an_unknown_environment_is_refused_by_the_configuration(
    workdir: Path, remote: Remote, github: GitHubApiDouble
) -> None:
    write_source(workdir, gitops_config(remote, github.url))

    with (
        DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag,
        pytest.raises(ConfigError, match="stagin"),
    ):
        await module().manifest(source=dag.directory(), sha=SHA, environment="stagin")

    assert remote.branches() == ["main"]


PASSWORD = "pw-Very-Secret-42"
REGISTRY_CONFIG = APP.replace(
    'repository = "hello"\n', 'repository = "hello"\npassword_env = "REGISTRY_PASSWORD"\n', 1
)


@pytest.mark.anyio
async def test_ci_returns_the_reports_when_a_stage_fails_and_logs_the_failure(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGISTRY_PASSWORD", raising=False)
    write_source(workdir, REGISTRY_CONFIG)
    double = DaggerApiDouble(
        answers={
            "export": "ok",
            "plaintext": PASSWORD,
            "exitCode": 2,
            "stdout": "1 failed",
            "stderr": f"login with {PASSWORD} refused",
        }
    )

    with double.as_dag() as dag:
        reports = await module().ci(
            source=dag.directory(),
            sha=SHA,
            registry_password=dag.set_secret("registry-password", PASSWORD),
        )
        reports_id = await reports.id()

    # the function's result is the module's artifacts directory ...
    assert isinstance(reports, dagger.Directory)
    assert double.made_by(reports_id, "currentModule")
    assert double.calls("workdir") == [{"path": ARTIFACTS_DIR}]
    # ... whose summary.json says the run failed, and where
    text = (workdir / ARTIFACTS_DIR / "summary.json").read_text()
    summary = json.loads(text)
    assert summary["ok"] is False
    assert summary["sha"] == SHA
    rows = {row["name"]: row for row in summary["stages"]}
    assert list(rows) == ["test", "build", "publish"]
    assert rows["test"]["status"] == "failed"
    assert rows["test"]["reason"].startswith("tests failed")
    assert rows["test"]["attempts"] == 1
    assert rows["build"]["status"] == "success"
    assert (rows["publish"]["status"], rows["publish"]["reason"]) == (
        "skipped",
        "dependency 'test' failed",
    )
    assert summary["outputs"]["build"]["image.local_ref"].startswith("dagger-container-")
    # the failure is in the call's log; the password is nowhere shown
    err = capsys.readouterr().err
    assert err.startswith("conveyor: the pipeline failed (stages: test): test: tests failed")
    shown = text + err + (workdir / ARTIFACTS_DIR / "test" / "output.log").read_text()
    assert PASSWORD not in shown
    assert double.calls("publish") == []


@pytest.mark.anyio
async def test_ci_strict_fails_the_call(workdir: Path) -> None:
    write_source(workdir, APP)
    double = DaggerApiDouble(answers={"export": "ok", "exitCode": 1, "stdout": "", "stderr": ""})

    with double.as_dag() as dag, pytest.raises(TestsFailedError):
        await module().ci(source=dag.directory(), sha=SHA, strict=True)

    assert json.loads((workdir / ARTIFACTS_DIR / "summary.json").read_text())["ok"] is False


@pytest.mark.anyio
async def test_a_configuration_error_fails_ci_before_any_stage(workdir: Path) -> None:
    write_source(workdir, APP.replace('name = "hello"', 'name = "hello"\nnot_a_key = 1'))

    with DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag, pytest.raises(ConfigError):
        await module().ci(source=dag.directory(), sha=SHA)

    assert not (workdir / ARTIFACTS_DIR / "summary.json").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def registry() -> PrivateRegistry:
    """A registry only the engine reaches: on this machine nothing listens at its address,
    so the function fails if it speaks to it itself (as it once did, for the tag check)."""
    return PrivateRegistry(f"127.0.0.1:{free_port()}", "alice", "pw-Only-The-Engine-7")


@pytest.fixture
def app_service() -> Iterator[str]:
    """What the smoke stage's service endpoint reaches: a real HTTP server serving SHA
    at /version, as the built image would (the engine's service is the double's answer)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            body = SHA.encode() if self.path == "/version" else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def module_gitops_config(registry: PrivateRegistry, remote: Remote) -> str:
    """Publish to the registry, pin in staging; smoke on, since publish reaches
    the build's outputs only through scan or smoke (stages.delivery)."""
    return f"""
[app]
name = "hello"

[registry]
host = "{registry.host}"
repository = "hello"
insecure = true
password_env = "REGISTRY_PASSWORD"

[stages.test]
image = "python:3.12-slim"
command = ["python", "-m", "pytest", "-q"]

[stages.scan]
enabled = false

[stages.smoke]
port = 8080

[stages.manifest]
# the module's source is exported without .git: the order of commits cannot be told there
allow_unordered = true

[policy]
allowed_registries = ['^127\\.0\\.0\\.1:[0-9]+/.+$', '^myacr\\.azurecr\\.io/.+$']

[gitops]
repo = "{remote.bare}"
branch = "main"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"
promotion = "commit"
image_name = "myacr.azurecr.io/hello"
"""


@pytest.mark.anyio
async def test_manifest_commits_with_git_in_the_runtime_and_renders_in_a_kubectl_container(
    workdir: Path,
    remote: Remote,
    registry: PrivateRegistry,
    app_service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REGISTRY_PASSWORD", raising=False)
    write_source(workdir, module_gitops_config(registry, remote))
    digest = "sha256:" + "9" * 64
    address = f"{registry.host}/hello:{SHA}"
    pushed = f"{address}@{digest}"
    # what the engine answers when every registry host has no such tag
    absent = f'failed to resolve image "{address}" (platform: "linux/amd64"): {address}: not found'
    double = DaggerApiDouble(
        answers={
            "export": "ok",
            "plaintext": registry.password,
            "exitCode": 0,
            "stderr": "",
            "publish": pushed,
            "endpoint": app_service,
        },
        failures=[QueryFailure("imageRef", absent)],
    )
    double.answers["stdout"] = kubectl_container_double(double, workdir, other="1 passed")

    with double.as_dag() as dag:
        out = await module().manifest(
            source=dag.directory(),
            sha=SHA,
            registry_username=registry.user,
            registry_password=dag.set_secret("registry-password", registry.password),
        )

    # git ran in the runtime: the digest is committed and pushed to the manifest repository
    assert f"commit={remote.sha()}\n" in out
    assert "changed=true\n" in out
    staging = remote.show("main", "apps/hello/overlays/staging/kustomization.yaml")
    assert f"newName: {registry.host}/hello" in staging
    assert f"digest: {digest}" in staging
    # kubectl did not: the rendering (the pre-commit check) ran kubectl kustomize
    # in the pinned kubectl image on a clone in the module's working directory,
    # loaded through currentModule.workdir; the policy stage checked that render
    # of the commit it pushed (the branch tip) instead of rendering it again
    overlay = "/manifests/apps/hello/overlays/staging"
    kustomize = [c for c in double.calls("withExec") if c["args"][:2] == ["kubectl", "kustomize"]]
    assert kustomize == [{"args": ["kubectl", "kustomize", overlay]}]
    assert double.calls("from").count({"address": KUBECTL_IMAGE}) == 1
    clones = [c["path"] for c in double.calls("workdir") if c["path"] != ARTIFACTS_DIR]
    assert [path.split("/")[0] for path in clones] == [GITOPS_DIR]
    assert clones[0].startswith(f"{GITOPS_DIR}/conveyor-manifests-")
    assert list((workdir / GITOPS_DIR).iterdir()) == []  # the clones are removed
    # the tag was checked through the engine, with the credentials, before the push
    assert {"address": address} in double.calls("from")
    checks = [c for c in double.calls("withRegistryAuth") if c["address"] == address]
    assert len(checks) == 2  # the check and the push


def test_summary_paths_are_relative_to_the_exported_reports(tmp_path: Path) -> None:
    from conveyor_pipelines.session import relocate_summary  # noqa: PLC0415

    artifacts = tmp_path / "scratch" / ARTIFACTS_DIR
    artifacts.mkdir(parents=True)
    summary = {
        "ok": True,
        "outputs": {
            "test": {"junit": str(artifacts / "test" / "junit.xml"), "summary": "3 passed"},
            "scan": {"report": str(artifacts / "scan" / "trivy.json"), "other": "/etc/hosts"},
        },
    }
    (artifacts / "summary.json").write_text(json.dumps(summary), encoding="utf-8")

    relocate_summary(artifacts)

    outputs = json.loads((artifacts / "summary.json").read_text(encoding="utf-8"))["outputs"]
    assert outputs["test"] == {"junit": "test/junit.xml", "summary": "3 passed"}
    assert outputs["scan"] == {"report": "scan/trivy.json", "other": "/etc/hosts"}
    assert sorted(p.name for p in artifacts.iterdir()) == ["summary.json"]


@pytest.mark.anyio
async def test_promote_says_why_a_relative_repository_outside_the_source_cannot_be_used(
    workdir: Path, remote: Remote
) -> None:
    config = gitops_config(remote, "http://127.0.0.1:9").replace(
        f'repo = "{remote.bare}"', 'repo = "../../.conveyor/demo/manifests.git"'
    )
    write_source(workdir, config)

    with (
        DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag,
        pytest.raises(ConfigError) as caught,
    ):
        await module().promote(source=dag.directory(), to="production")

    assert caught.value.field == "gitops.repo"
    assert "'../../.conveyor/demo/manifests.git' resolves to" in str(caught.value)
    assert "sees only its arguments" in str(caught.value)
    assert caught.value.hint is not None
    assert "https://" in caught.value.hint


@pytest.mark.anyio
async def test_a_relative_repository_inside_the_source_resolves_against_it(
    workdir: Path, remote: Remote, github: GitHubApiDouble
) -> None:
    source = workdir / SOURCE_DIR
    shutil.copytree(remote.bare, source / "manifests.git")
    config = gitops_config(remote, github.url).replace(
        f'repo = "{remote.bare}"', 'repo = "manifests.git"'
    )
    write_source(workdir, config)
    from conveyor_pipelines.session import check_manifest_repo, load  # noqa: PLC0415

    with DaggerApiDouble(answers={"export": "ok"}).as_dag() as dag:
        loaded = await load(dag.directory(), "conveyor.toml")

    check_manifest_repo(loaded)  # no error
    assert loaded.manifest_repo() == str((source / "manifests.git").resolve())


@pytest.mark.anyio
async def test_publish_without_a_password_pushes_with_the_login_in_the_credential_files(
    workdir: Path,
    remote: Remote,
    registry: PrivateRegistry,
    app_service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # what 'docker login' / 'podman login' leave; REGISTRY_AUTH_FILE names it
    login = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
    auth_file = workdir.parent / "auth.json"
    auth_file.write_text(json.dumps({"auths": {registry.host: {"auth": login}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    config = module_gitops_config(registry, remote)
    config = config.replace('password_env = "REGISTRY_PASSWORD"\n', "").split("[gitops]")[0]
    write_source(workdir, config)
    address = f"{registry.host}/hello:{SHA}"
    absent = f'failed to resolve image "{address}" (platform: "linux/amd64"): {address}: not found'
    double = DaggerApiDouble(
        answers={
            "export": "ok",
            "exitCode": 0,
            "stdout": "1 passed",
            "stderr": "",
            "publish": f"{address}@sha256:{'7' * 64}",
            "endpoint": app_service,
        },
        failures=[QueryFailure("imageRef", absent)],
    )

    with double.as_dag() as dag:
        ref = await module().publish(source=dag.directory(), sha=SHA)

    assert ref == f"{address}@sha256:{'7' * 64}"
    # the check and the push went to the engine with the login's user and password
    auths = [c for c in double.calls("withRegistryAuth") if c["address"] == address]
    assert len(auths) == 2
    assert {c["username"] for c in auths} == {registry.user}
    assert registry.password in [c.get("plaintext") for c in double.calls("setSecret")]


# -- ci --validate: a pull request's run, as conveyor run --validate -----------------


def summary_rows(workdir: Path) -> dict[str, dict[str, Any]]:
    summary = json.loads((workdir / ARTIFACTS_DIR / "summary.json").read_text())
    return {row["name"]: row for row in summary["stages"]}


@pytest.mark.anyio
async def test_ci_validate_gates_runs_every_gate_and_publishes_and_commits_nothing(  # noqa: PLR0917 - pytest passes fixtures by name
    workdir: Path,
    remote: Remote,
    registry: PrivateRegistry,
    app_service: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REGISTRY_PASSWORD", raising=False)
    write_source(workdir, module_gitops_config(registry, remote))
    main_before = remote.sha()
    address = f"{registry.host}/hello:{SHA}"
    # no answer for publish: a push query would fail the call
    double = DaggerApiDouble(
        answers={
            "export": "ok",
            "plaintext": registry.password,
            "exitCode": 0,
            "stdout": "1 passed",
            "stderr": "",
            "endpoint": app_service,
        }
    )

    with double.as_dag() as dag:
        reports = await module().ci(
            source=dag.directory(),
            sha=SHA,
            registry_password=dag.set_secret("registry-password", registry.password),
            validate=["gates"],
        )
        reports_id = await reports.id()

    assert double.made_by(reports_id, "currentModule")
    rows = summary_rows(workdir)
    gates = ("test", "build", "smoke")
    assert {name: rows[name]["status"] for name in gates} == dict.fromkeys(gates, "success")
    assert (rows["publish"]["status"], rows["publish"]["reason"]) == (
        "skipped",
        "a validation run (--validate gates) publishes nothing",
    )
    assert rows["manifest"]["status"] == "skipped"
    assert rows["policy"]["status"] == "skipped"
    # nothing was sent to the registry: no push, no tag check, no login for the address
    assert double.calls("publish") == []
    assert {"address": address} not in double.calls("from")
    assert [c for c in double.calls("withRegistryAuth") if c["address"] == address] == []
    # nothing was committed: the manifest repository is as it was
    assert remote.sha() == main_before
    assert remote.branches() == ["main"]
    # the function's log starts as conveyor run --validate's output does
    assert capsys.readouterr().err.splitlines()[0] == (
        "validation: every stage publish waits for; skipped: publish and what needs it"
    )


@pytest.mark.anyio
async def test_ci_validate_stage_names_runs_those_only(workdir: Path) -> None:
    write_source(workdir, APP)
    double = DaggerApiDouble(
        answers={"export": "ok", "exitCode": 0, "stdout": "1 passed", "stderr": ""}
    )

    with double.as_dag() as dag:
        await module().ci(source=dag.directory(), sha=SHA, validate=["test"])

    rows = summary_rows(workdir)
    assert [(name, row["status"]) for name, row in rows.items()] == [
        ("test", "success"),
        ("build", "skipped"),
        ("publish", "skipped"),
    ]
    assert rows["build"]["reason"] == "not in --validate test"
    assert double.calls("dockerBuild") == []
    assert double.calls("publish") == []
    pytest_runs = [
        c for c in double.calls("withExec") if c["args"][:3] == ["python", "-m", "pytest"]
    ]
    assert len(pytest_runs) == 1


IMAGES = """
[app]
name = "shop"

[registry]
host = "myacr.azurecr.io"
repository = "shop"

[images.api]
context = "api"

[images.web]
context = "web"

[stages.scan]
enabled = false

[stages.smoke]
enabled = false
"""


@pytest.mark.anyio
async def test_ci_validate_a_kind_keeps_each_images_stage_of_it(workdir: Path) -> None:
    source = write_source(workdir, IMAGES)
    for name in ("api", "web"):
        (source / name).mkdir()
        (source / name / "Dockerfile").write_text("FROM python:3.12-slim\n", encoding="utf-8")
    double = DaggerApiDouble(answers={"export": "ok"})

    with double.as_dag() as dag:
        await module().ci(source=dag.directory(), sha=SHA, validate=["build"])

    rows = summary_rows(workdir)
    statuses = {name: row["status"] for name, row in rows.items()}
    assert statuses == {
        "build-api": "success",
        "build-web": "success",
        "publish-api": "skipped",
        "publish-web": "skipped",
    }
    assert rows["publish-web"]["reason"] == "a validation run (--validate build) publishes nothing"
    assert len(double.calls("dockerBuild")) == 2
    assert double.calls("publish") == []


@pytest.mark.anyio
async def test_ci_validate_blank_is_gates_never_a_delivery(workdir: Path) -> None:
    write_source(workdir, APP)
    # an empty CI input arrives as one blank value
    double = DaggerApiDouble(
        answers={"export": "ok", "exitCode": 0, "stdout": "1 passed", "stderr": ""}
    )

    with double.as_dag() as dag:
        await module().ci(source=dag.directory(), sha=SHA, validate=[" "])

    rows = summary_rows(workdir)
    assert rows["build"]["status"] == "success"
    assert rows["publish"]["reason"] == "a validation run (--validate gates) publishes nothing"
    assert double.calls("publish") == []


@pytest.mark.parametrize(
    ("values", "error"),
    [(["tset"], UnknownStageError), (["gates", "test"], ConfigError)],
)
def test_ci_validate_refuses_what_conveyor_run_refuses_with_the_same_error(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    values: list[str],
    error: type[ConveyorError],
) -> None:
    source = write_source(workdir, REGISTRY_CONFIG)
    double = DaggerApiDouble(answers={"export": "ok", "plaintext": PASSWORD})

    async def call() -> None:
        with double.as_dag() as dag:
            await module().ci(
                source=dag.directory(),
                sha=SHA,
                registry_password=dag.set_secret("registry-password", PASSWORD),
                validate=values,
            )

    # not an anyio test: conveyor run below starts its own event loop, in this thread
    with pytest.raises(error) as caught:
        anyio.run(call)

    # before anything: the source export only, no secret read, no stage, no report
    asked = {
        node
        for text in double.documents
        for node in ("plaintext", "withExec", "dockerBuild")
        if node in text
    }
    assert asked == set()
    assert not (workdir / ARTIFACTS_DIR / "summary.json").exists()
    # conveyor run on the same source says the same, exit 3 (configuration)
    monkeypatch.setenv("CONVEYOR_SOURCE_SHA", SHA)
    capsys.readouterr()
    args = ["run", "--config", str(source / "conveyor.toml")]
    code = invoke([*args, *(f"--validate={value}" for value in values)])
    assert (code, capsys.readouterr().err) == (3, f"error: {caught.value}\n")
    assert not (source / ".conveyor").exists()


@pytest.mark.anyio
async def test_ci_validate_needs_no_manifest_repository_it_never_reaches(
    workdir: Path, remote: Remote
) -> None:
    config = gitops_config(remote, "http://127.0.0.1:9").replace(
        f'repo = "{remote.bare}"', 'repo = "../../.conveyor/demo/manifests.git"'
    )
    write_source(workdir, config)
    double = DaggerApiDouble(
        answers={"export": "ok", "exitCode": 0, "stdout": "1 passed", "stderr": ""}
    )

    with double.as_dag() as dag:
        # a delivery would commit there, and is refused before any stage ...
        with pytest.raises(ConfigError) as caught:
            await module().ci(source=dag.directory(), sha=SHA)
        assert caught.value.field == "gitops.repo"
        # ... a validation run never gets to the manifest stage
        await module().ci(source=dag.directory(), sha=SHA, validate=["gates"])

    rows = summary_rows(workdir)
    assert (rows["test"]["status"], rows["build"]["status"]) == ("success", "success")
    assert rows["manifest"]["status"] == "skipped"
    assert double.calls("publish") == []
