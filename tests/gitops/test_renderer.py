"""Which kustomize renders on the host: a standalone v5 on PATH, else kubectl's own.

Real binaries: the host's kubectl (kustomize v5.5 inside) and the standalone
kustomize v5.7.1 that scripts/install-go-tools.sh caches in
/var/cache/conveyor/bin.  One double: a program named ``kustomize`` that
answers ``kustomize version`` with an old major version (v4), to show that an
old standalone copy is passed over.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ManifestError
from conveyor.gitops import renderer
from conveyor.gitops.renderer import kustomize_command, render
from conveyor.process import observe_processes
from started_processes import Started

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
STAGING = RESOURCES / "apps/hello/overlays/staging"
KUSTOMIZE = Path("/var/cache/conveyor/bin/kustomize")


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    """Each test asks its own PATH's kustomize for its version (the answer is cached)."""
    renderer._standalone.cache_clear()
    yield
    renderer._standalone.cache_clear()


def with_path(monkeypatch: pytest.MonkeyPatch, *directories: Path) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is preinstalled on this project's machines"
    kept = [str(Path(kubectl).parent), "/usr/bin", "/bin"]
    monkeypatch.setenv("PATH", os.pathsep.join([*map(str, directories), *kept]))


def test_a_standalone_kustomize_v5_on_path_renders_what_kubectl_renders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not os.access(KUSTOMIZE, os.X_OK):
        pytest.fail(f"{KUSTOMIZE} is missing: run 'bash scripts/install-go-tools.sh'")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kustomize").symlink_to(KUSTOMIZE)
    with_path(monkeypatch, bin_dir)
    started = Started()

    with observe_processes(started):
        first = render(STAGING)
        second = render(STAGING)

    # the version is asked once, then kustomize builds each time; kubectl never runs
    assert started.names == ["kustomize version", "kustomize build", "kustomize build"]
    assert kustomize_command()[1:] == ["build"]
    by_kubectl = subprocess.run(
        ["kubectl", "kustomize", str(STAGING)],
        env={"PATH": os.environ["PATH"], "KUBECONFIG": os.devnull},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert first == second == by_kubectl
    assert "image: myacr.azurecr.io/hello:" in first


def test_kubectl_renders_without_a_standalone_kustomize_or_with_an_old_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_path(monkeypatch)
    assert kustomize_command()[1:] == ["kustomize"]
    renderer._standalone.cache_clear()
    # the double: an old standalone kustomize (v4) first on PATH
    old = tmp_path / "old"
    old.mkdir()
    (old / "kustomize").write_text(
        "#!/bin/sh\necho '{Version:kustomize/v4.5.7 GitCommit:none}'\n", encoding="utf-8"
    )
    (old / "kustomize").chmod(0o755)
    with_path(monkeypatch, old)
    started = Started()

    with observe_processes(started):
        rendered = render(STAGING)

    assert started.names == ["kustomize version", "kubectl kustomize"]
    assert "image: myacr.azurecr.io/hello:" in rendered


def test_a_standalone_kustomize_reports_a_broken_kustomization_as_kubectl_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources:\n- missing.yaml\n", encoding="utf-8")
    problems = []
    for directories in ((), (KUSTOMIZE.parent,)):
        renderer._standalone.cache_clear()
        with_path(monkeypatch, *directories)
        with pytest.raises(ManifestError) as caught:
            render(broken)
        problems.append(caught.value.problem)

    assert problems[0] == problems[1]
    assert problems[0].startswith("kustomize could not build it: accumulating resources")
