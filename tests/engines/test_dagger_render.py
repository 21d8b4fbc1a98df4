"""DaggerRenderer against the Dagger API contract, offline.

The renderer's queries go to ``DaggerApiDouble`` (tests/engines/dagger_query.py),
which validates each one against the Dagger v0.21.8 schema.  The tests assert
what was sent: the pinned kubectl image, ``kubectl kustomize`` on the mounted
directory, and that directory loaded with ``currentModule.workdir`` by its path
relative to the module's working directory.

Where a test needs the rendering itself, ``kubectl_container_double`` stands in
for the kubectl container the engine would run: it copies what the query
mounts (the ``currentModule.workdir`` path, less its excludes) to a directory
of its own, as the engine would, and runs the host's real ``kubectl
kustomize`` on the path the exec arguments name inside it.  The manifest repositories are real
(git, a bare remote seeded with tests/resources/manifests).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import anyio
import pytest
from dagger_kubectl import kubectl_container_double
from dagger_query import DaggerApiDouble, ExecFailure

from conveyor.config import load_config
from conveyor.engines.dagger_render import EXCLUDE, KUBECTL_IMAGE, MOUNT, DaggerRenderer
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ManifestError
from conveyor.gitops.renderer import render
from conveyor.stages.context import DeliveryContext
from conveyor.stages.manifest import run_policy

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
STAGING = "apps/hello/overlays/staging"
PINNED = "myacr.azurecr.io/hello:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567@sha256:" + "2" * 64


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)


def work_tree(path: Path) -> Path:
    """A git work tree at ``path`` holding tests/resources/manifests."""
    shutil.copytree(RESOURCES, path)
    git("init", "--quiet", "--initial-branch=main", cwd=path)
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The module's scratch working directory, as the runtime sees it."""
    path = tmp_path / "scratch"
    path.mkdir()
    return path


@pytest.mark.anyio
async def test_renders_with_the_pinned_kubectl_image_and_the_clone_from_the_module_workdir(
    workdir: Path,
) -> None:
    repo = work_tree(workdir / "gitops" / "conveyor-manifests-1" / "repo")
    double = DaggerApiDouble(answers={"stdout": "kind: Deployment\n"})

    rendered = await DaggerRenderer(double.client(), workdir).render(repo / STAGING)

    assert rendered == "kind: Deployment\n"
    assert double.calls("from") == [{"address": KUBECTL_IMAGE}]
    assert KUBECTL_IMAGE == "registry.k8s.io/kubectl:v1.32.4"
    # the whole work tree (its base is ../../base), by its path inside the workdir, without .git
    assert double.calls("workdir") == [
        {"path": "gitops/conveyor-manifests-1/repo", "exclude": list(EXCLUDE)}
    ]
    assert EXCLUDE == (".git",)
    (mount,) = double.calls("withMountedDirectory")
    assert mount["path"] == MOUNT
    assert double.made_by(mount["source"], "currentModule")
    assert double.calls("withExec") == [{"args": ["kubectl", "kustomize", f"{MOUNT}/{STAGING}"]}]


@pytest.mark.anyio
async def test_called_from_a_worker_thread_it_waits_for_the_engine_on_the_event_loop(
    workdir: Path,
) -> None:
    repo = work_tree(workdir / "repo")
    double = DaggerApiDouble()
    double.answers["stdout"] = kubectl_container_double(double, workdir)
    renderer = DaggerRenderer(double.client(), workdir)
    threads: list[threading.Thread] = []

    def in_worker() -> str:
        threads.append(threading.current_thread())
        return renderer(repo / STAGING)

    rendered = await anyio.to_thread.run_sync(in_worker)

    assert threads != [threading.main_thread()]
    assert rendered == render(repo / STAGING)
    assert f"image: {PINNED}" in rendered
    assert "namespace: hello-staging" in rendered


@pytest.mark.anyio
async def test_a_directory_in_no_repository_mounts_the_whole_workdir(workdir: Path) -> None:
    shutil.copytree(RESOURCES, workdir / "plain")
    double = DaggerApiDouble()
    double.answers["stdout"] = kubectl_container_double(double, workdir)

    rendered = await DaggerRenderer(double.client(), workdir).render(workdir / "plain" / STAGING)

    assert double.calls("workdir") == [{"path": ".", "exclude": [".git"]}]
    assert double.calls("withExec") == [
        {"args": ["kubectl", "kustomize", f"{MOUNT}/plain/{STAGING}"]}
    ]
    assert f"image: {PINNED}" in rendered


@pytest.mark.anyio
async def test_kustomize_failing_in_the_container_is_a_manifest_error_naming_the_directory(
    workdir: Path,
) -> None:
    repo = work_tree(workdir / "repo")
    stderr = "Error: accumulating resources: '/manifests/apps/hello/base': missing\n"
    double = DaggerApiDouble(
        failures=[ExecFailure("kustomize", ["kubectl", "kustomize"], 1, stderr=stderr)]
    )

    with pytest.raises(ManifestError) as caught:
        await DaggerRenderer(double.client(), workdir).render(repo / STAGING)

    assert caught.value.path == repo / STAGING
    # kustomize's own message, without its "Error: " prefix, as on the host
    assert caught.value.problem == (
        "kustomize could not build it: accumulating resources: '/manifests/apps/hello/base': "
        "missing"
    )


@pytest.mark.anyio
async def test_a_directory_outside_the_module_workdir_is_refused_before_any_query(
    workdir: Path, tmp_path: Path
) -> None:
    repo = work_tree(tmp_path / "elsewhere")
    double = DaggerApiDouble(answers={"stdout": "unused"})

    with pytest.raises(ManifestError) as caught:
        await DaggerRenderer(double.client(), workdir).render(repo / STAGING)

    assert caught.value.path == repo / STAGING
    assert "outside the module's working directory" in caught.value.problem
    assert "DeliveryContext.workdir" in str(caught.value.hint)
    assert double.documents == []


@pytest.mark.anyio
async def test_a_directory_without_a_kustomization_is_refused_as_on_the_host(
    workdir: Path,
) -> None:
    empty = workdir / "repo" / "apps" / "none"
    empty.mkdir(parents=True)
    double = DaggerApiDouble(answers={"stdout": "unused"})

    with pytest.raises(ManifestError) as on_dagger:
        await DaggerRenderer(double.client(), workdir).render(empty)
    with pytest.raises(ManifestError) as on_host:
        render(empty)

    assert str(on_dagger.value) == str(on_host.value)
    assert double.documents == []


@pytest.mark.anyio
async def test_the_policy_stage_clones_under_the_workdir_and_renders_in_the_container(
    workdir: Path, tmp_path: Path
) -> None:
    manifests = work_tree(tmp_path / "manifests")
    git("add", "-A", cwd=manifests)
    author = ("-c", "user.name=T", "-c", "user.email=t@example.invalid")
    git(*author, "commit", "--quiet", "-m", "manifests", cwd=manifests)
    bare = tmp_path / "manifests.git"
    git("clone", "--quiet", "--bare", str(manifests), str(bare))
    app = tmp_path / "app"
    app.mkdir()
    (app / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "hello"\n\n'
        f'[gitops]\nrepo = "{bare}"\nbranch = "main"\n\n'
        f'[gitops.environments.staging]\npath = "{STAGING}"\npromotion = "commit"\n',
        encoding="utf-8",
    )
    double = DaggerApiDouble()
    double.answers["stdout"] = kubectl_container_double(double, workdir)
    clones = workdir / "gitops"
    clones.mkdir()
    ctx = DeliveryContext(
        load_config(app / "conveyor.toml", env={}),
        NoEngine(),
        "3f2a9c1d4e5b6a7980123456789abcdef0123456",
        tmp_path / "artifacts",
        render=DaggerRenderer(double.client(), workdir),
        workdir=clones,
    )

    outputs = await run_policy(ctx, {})

    assert outputs == {
        "environment": "staging",
        "violations": "0",
        "rendered": "from a clone of the branch tip",
    }
    (tree,) = double.calls("workdir")
    assert tree["path"].startswith("gitops/conveyor-policy-")
    assert tree["path"].endswith("/repo")
    assert double.calls("withExec") == [{"args": ["kubectl", "kustomize", f"{MOUNT}/{STAGING}"]}]
    assert list(clones.iterdir()) == []  # the clone is gone afterwards
