"""update_manifest on a 200-app repository checks out only what the update needs.

The work tree is recorded from inside the ``verify`` callback (the last moment
before the commit), and the overlay is rendered there by the real
``kubectl kustomize``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitops_helpers import git, make_remote, show
from sparse_repo import APPS, DIGEST, app, commit_in_bare, files, overlay, seed, tracked, write

from conveyor.errors import ManifestError
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.kustomization import ImageEdit, find_image
from conveyor.gitops.renderer import render
from conveyor.gitops.update import update_manifest

APP = 42
ROOT_FILES = {"README.md", "apps/OWNERS"}  # files of the root and of a cone's parents


def staging_files(i: int) -> set[str]:
    return {
        f"{overlay(i)}/kustomization.yaml",
        f"{overlay(i)}/settings.properties",
        f"apps/{app(i)}/base/kustomization.yaml",
        f"apps/{app(i)}/base/deployment.yaml",
        "components/replicas/kustomization.yaml",
        "components/replicas/replicas.yaml",
    }


def pin(i: int, tag: str = "v2") -> FileEdit:
    return FileEdit(
        f"{overlay(i)}/kustomization.yaml",
        ImageEdit(app(i), f"myacr.azurecr.io/{app(i)}", tag, DIGEST),
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 200-app repository, made once for the module."""
    root = tmp_path_factory.mktemp("seed")
    seed(root / "content")
    return make_remote(root, root / "content")


@pytest.fixture
def big_remote(tmp_path: Path, seeded: Path) -> Path:
    """A fresh bare copy of the 200-app repository for one test."""
    bare = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(seeded), str(bare))
    return bare


def test_render_sees_only_the_overlay_closure_and_the_commit_keeps_every_file(
    big_remote: Path,
) -> None:
    before = tracked(big_remote)
    assert len(before) == 5 * APPS + 5
    seen: list[set[str]] = []
    rendered: list[str] = []

    def verify(root: Path) -> None:
        seen.append(files(root))
        rendered.append(render(root / overlay(APP)))

    result = update_manifest(
        str(big_remote), "main", [pin(APP)], message="pin", verify=verify, sparse=[overlay(APP)]
    )
    assert result.changed
    assert seen == [staging_files(APP) | ROOT_FILES]
    # base + overlay, the component's patch from the sibling tree, the generated ConfigMap
    out = rendered[0]
    assert f"image: myacr.azurecr.io/{app(APP)}:v2@{DIGEST}" in out
    assert "replicas: 3" in out
    assert f"greeting=hello from {app(APP)}" in out
    assert f"name: {app(APP)}-settings-" in out
    # the commit changed the one file and left the 1,000 others in the tree
    assert tracked(big_remote) == before
    changed = git("diff", "--name-only", "main~1", "main", cwd=big_remote).split()
    assert changed == [f"{overlay(APP)}/kustomization.yaml"]


def test_without_sparse_directories_only_the_edited_files_directories_are_there(
    big_remote: Path,
) -> None:
    seen: list[set[str]] = []
    edits = [pin(APP), pin(7)]
    update_manifest(
        str(big_remote),
        "main",
        edits,
        message="pin",
        verify=lambda r: seen.append(files(r)),
        sparse=[],
    )
    assert seen == [
        {f"{overlay(APP)}/kustomization.yaml", f"{overlay(APP)}/settings.properties"}
        | {f"{overlay(7)}/kustomization.yaml", f"{overlay(7)}/settings.properties"}
        | ROOT_FILES
    ]
    for i in (APP, 7):
        entry = find_image(show(big_remote, f"{overlay(i)}/kustomization.yaml"), app(i))
        assert entry is not None
        assert entry.digest == DIGEST


def test_verify_without_sparse_still_sees_every_file(big_remote: Path) -> None:
    seen: list[set[str]] = []
    update_manifest(
        str(big_remote), "main", [pin(APP)], message="pin", verify=lambda r: seen.append(files(r))
    )
    assert seen == [tracked(big_remote)]


def test_update_without_verify_lands_and_keeps_every_file(big_remote: Path) -> None:
    before = tracked(big_remote)
    result = update_manifest(str(big_remote), "main", [pin(APP)], message="pin")
    assert result.changed
    assert tracked(big_remote) == before
    entry = find_image(show(big_remote, f"{overlay(APP)}/kustomization.yaml"), app(APP))
    assert entry is not None
    assert entry.format() == f"myacr.azurecr.io/{app(APP)}:v2@{DIGEST}"


def test_a_layout_the_closure_misses_is_rendered_again_with_every_file(
    tmp_path: Path,
) -> None:
    content = tmp_path / "content"
    seed(content, apps=3)
    remote = make_remote(tmp_path, content)
    # the overlay reaches its base through a symbolic link, which the closure does not follow
    # (committed from a clone: copying the seed would turn the link into a directory)
    work = tmp_path / "work"
    git("clone", "-q", str(remote), str(work))
    linked = work / "apps/linked/overlays/staging"
    write(linked / "kustomization.yaml", f"resources: [base]\nimages:\n- name: {app(1)}\n")
    os.symlink("../../../app001/base", linked / "base")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "linked overlay", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    assert git("ls-tree", "main", "apps/linked/overlays/staging/base", cwd=remote).startswith(
        "120000 blob"
    )
    seen: list[set[str]] = []
    failures: list[str] = []

    def verify(root: Path) -> None:
        seen.append(files(root))
        try:
            out = render(root / "apps/linked/overlays/staging")
        except ManifestError as error:
            failures.append(str(error))
            raise
        assert f"image: myacr.azurecr.io/{app(1)}:v2@{DIGEST}" in out

    edit = FileEdit(
        "apps/linked/overlays/staging/kustomization.yaml",
        ImageEdit(app(1), f"myacr.azurecr.io/{app(1)}", "v2", DIGEST),
    )
    result = update_manifest(
        str(remote),
        "main",
        [edit],
        message="pin linked",
        verify=verify,
        sparse=["apps/linked/overlays/staging"],
    )
    assert result.changed
    assert len(failures) == 1
    assert "kustomize could not build it" in failures[0]
    # first the sparse tree (no base behind the link), then every file
    assert f"apps/{app(1)}/base/deployment.yaml" not in seen[0]
    assert seen[1] == tracked(remote, "main~1")
    assert git("diff", "--name-only", "main~1", "main", cwd=remote).split() == [edit.path]


def test_a_real_render_failure_still_fails_after_the_second_try(big_remote: Path) -> None:
    broken = {f"{overlay(APP)}/kustomization.yaml": "resources: [../../missing]\n"}
    commit_in_bare(big_remote, broken, "break it")
    head = git("rev-parse", "main", cwd=big_remote)
    calls: list[int] = []

    def verify(root: Path) -> None:
        calls.append(len(files(root)))
        render(root / overlay(APP))

    edit = FileEdit(f"{overlay(APP)}/kustomization.yaml", ImageEdit(app(APP), None, "v2", None))
    with pytest.raises(ManifestError, match="kustomize could not build it"):
        update_manifest(
            str(big_remote), "main", [edit], message="x", verify=verify, sparse=[overlay(APP)]
        )
    # sparse first, then every file; nothing pushed
    assert len(calls) == 2
    assert calls[0] < 10 < calls[1]
    assert git("rev-parse", "main", cwd=big_remote) == head


def test_retry_after_a_refused_push_keeps_the_sparse_tree_and_follows_the_new_tip(
    big_remote: Path,
) -> None:
    seen: list[set[str]] = []
    rendered: list[str] = []
    # meanwhile another pipeline gives the overlay a second component
    component = {
        "components/labels/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            "labels:\n- pairs: {team: blue}\n"
        ),
        f"{overlay(APP)}/kustomization.yaml": (
            show(big_remote, f"{overlay(APP)}/kustomization.yaml").replace(
                "components:\n", "components:\n- ../../../../components/labels\n"
            )
        ),
    }

    def verify(root: Path) -> None:
        seen.append(files(root))
        rendered.append(render(root / overlay(APP)))
        if len(seen) == 1:
            commit_in_bare(big_remote, component, "add labels")

    result = update_manifest(
        str(big_remote),
        "main",
        [pin(APP)],
        message="pin",
        verify=verify,
        sparse=[overlay(APP)],
        sleep=lambda _: None,
    )
    assert result.attempts == 2
    assert seen[0] == staging_files(APP) | ROOT_FILES
    # after fetch and reset: still sparse, now with the new component
    assert seen[1] == seen[0] | {"components/labels/kustomization.yaml"}
    assert "team: blue" not in rendered[0]
    assert "team: blue" in rendered[1]
    assert f"image: myacr.azurecr.io/{app(APP)}:v2@{DIGEST}" in rendered[1]
    assert git("log", "--format=%s", "-3", "main", cwd=big_remote).split("\n")[:2] == [
        "pin",
        "add labels",
    ]
