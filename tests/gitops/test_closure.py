"""The kustomize closure and the sparse work tree, in a clone made without a checkout."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from gitops_helpers import make_remote
from sparse_repo import write

from conveyor.errors import CommandFailedError, ManifestError
from conveyor.gitops import git as git_module
from conveyor.gitops.closure import kustomize_dirs, read_kustomization
from conveyor.gitops.git import Git, GitObject
from conveyor.gitops.worktree import checkout_only
from conveyor.process import observe_processes
from started_processes import Started


def cloned(tmp_path: Path, content: Path) -> tuple[Git, Path]:
    """A clone of ``content`` with no work tree files at all."""
    remote = make_remote(tmp_path, content)
    git = Git(str(remote))
    root = tmp_path / "clone"
    git.clone(root, "main", checkout=False)
    assert [p.name for p in root.iterdir()] == [".git"]
    return git, root


@pytest.fixture
def layouts(tmp_path: Path) -> tuple[Git, Path]:
    """One repository holding every construct the closure follows (and some it must not)."""
    c = tmp_path / "content"
    write(c / "README.md", "x\n")
    # an overlay naming files and directories through every supported field
    write(
        c / "env/all/kustomization.yaml",
        """\
resources:
- ../../bases/web
- ../../shared/namespace.yaml
- https://github.com/acme/remote//deploy?ref=v1
- github.com/acme/other/deploy?ref=v2
- git@github.com:acme/private.git//x
- ../../../outside-the-repo
- /etc/absolute
bases: [../../legacy/base]
components: [../../components/tls]
patches:
- path: ../../patches/plain/replicas.yaml
- patch: |-
    - op: add
      path: /metadata/labels/x
      value: y
patchesStrategicMerge:
- ../../patches/smp/memory.yaml
- |-
  apiVersion: v1
  kind: Service
  metadata: {name: inline}
patchesJson6902:
- path: ../../patches/json/ops.yaml
  target: {kind: Deployment, name: web}
configMapGenerator:
- name: plain
  files: [../../config/files/app.properties]
- name: keyed
  files: [custom.key=../../config/keyed/x.properties]
  envs: [../../config/envs/a.env]
secretGenerator:
- name: legacy
  env: ../../config/env-singular/b.env
crds: [../../crds/widget.yaml]
openapi:
  path: ../../schemas/openapi.json
replacements:
- path: ../../replacements/r.yaml
configurations: [../../configurations/names.yaml]
transformers:
- ../../transformers/labels.yaml
- |-
  apiVersion: builtin
  kind: LabelTransformer
  metadata: {name: inline}
generators: [../../generators/dir]
validators: [../../validators/v.yaml]
helmGlobals:
  chartHome: ../../charts
""",
    )
    write(c / "bases/web/kustomization.yml", "resources: [../common, ../../files/extra/cm.yaml]\n")
    write(c / "bases/common/Kustomization", "resources: [deploy.yaml]\n")
    write(c / "bases/common/deploy.yaml", "kind: Deployment\n")
    write(c / "files/extra/cm.yaml", "kind: ConfigMap\n")
    write(c / "shared/namespace.yaml", "kind: Namespace\n")
    write(c / "legacy/base/kustomization.yaml", "resources: []\n")
    write(c / "components/tls/kustomization.yaml", "kind: Component\n")
    for path in (
        "patches/plain/replicas.yaml",
        "patches/smp/memory.yaml",
        "patches/json/ops.yaml",
        "config/files/app.properties",
        "config/keyed/x.properties",
        "config/envs/a.env",
        "config/env-singular/b.env",
        "crds/widget.yaml",
        "schemas/openapi.json",
        "replacements/r.yaml",
        "configurations/names.yaml",
        "transformers/labels.yaml",
        "validators/v.yaml",
        "charts/web/Chart.yaml",
        "unrelated/kustomization.yaml",
    ):
        write(c / path, "x: 1\n")
    write(c / "generators/dir/kustomization.yaml", "resources: [../../generated/out.yaml]\n")
    write(c / "generated/out.yaml", "x: 1\n")
    # a cycle: each names the other
    write(c / "cycle/a/kustomization.yaml", "resources: [../b]\n")
    write(c / "cycle/b/kustomization.yaml", "resources: [../a]\n")
    # the root itself as a kustomization reached from below
    write(c / "kustomization.yaml", "resources: [top/file.yaml]\n")
    write(c / "top/file.yaml", "x: 1\n")
    write(c / "up/kustomization.yaml", "resources: [..]\n")
    # not YAML a kustomize would read
    write(c / "broken/kustomization.yaml", "resources: [unclosed\n")
    write(c / "listy/kustomization.yaml", "- just\n- a list\n")
    return cloned(tmp_path, c)


def test_every_supported_field_brings_its_directory(layouts: tuple[Git, Path]) -> None:
    git, root = layouts
    assert kustomize_dirs(git, root, "env/all") == {
        "env/all",
        "bases/web",
        "bases/common",
        "files/extra",
        "shared",
        "legacy/base",
        "components/tls",
        "patches/plain",
        "patches/smp",
        "patches/json",
        "config/files",
        "config/keyed",
        "config/envs",
        "config/env-singular",
        "crds",
        "schemas",
        "replacements",
        "configurations",
        "transformers",
        "generators/dir",
        "generated",
        "validators",
        "charts",
    }


def test_a_cycle_ends_and_the_root_is_named_as_empty(layouts: tuple[Git, Path]) -> None:
    git, root = layouts
    assert kustomize_dirs(git, root, "cycle/a") == {"cycle/a", "cycle/b"}
    # "up" names the root, whose kustomization names top/file.yaml
    assert kustomize_dirs(git, root, "up/") == {"up", "", "top"}


def test_the_walk_reads_each_level_in_one_cat_file_batch(tmp_path: Path) -> None:
    c = tmp_path / "content"
    write(c / "apps/web/overlays/staging/kustomization.yaml", "resources: [../../base]\n")
    write(c / "apps/web/overlays/staging/patch.yaml", "x: 1\n")
    write(
        c / "apps/web/base/kustomization.yaml",
        "resources: [deployment.yaml]\ncomponents: [../../../components/tls]\n",
    )
    write(c / "apps/web/base/deployment.yaml", "kind: Deployment\n")
    write(c / "components/tls/kustomization.yaml", "patches: [{path: ../../shared/tls.yaml}]\n")
    write(c / "shared/tls.yaml", "x: 1\n")
    git, root = cloned(tmp_path, c)
    started = Started()

    with observe_processes(started):
        needed = kustomize_dirs(git, root, "apps/web/overlays/staging")

    assert needed == {"apps/web/overlays/staging", "apps/web/base", "components/tls", "shared"}
    # one batch a level (was two): the overlay, base, the component, the patch file
    batches = [c for c in started.commands if "cat-file" in c]
    assert len(batches) == 4
    assert len(started.commands) == 4


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("does/not/exist", {"does/not/exist"}),
        ("unrelated", {"unrelated"}),
        ("broken", {"broken"}),
        ("listy", {"listy"}),
        ("../escapes", set()),
    ],
)
def test_what_has_nothing_to_follow_is_itself_alone(
    layouts: tuple[Git, Path], directory: str, expected: set[str]
) -> None:
    git, root = layouts
    assert kustomize_dirs(git, root, directory) == expected


def test_objects_reads_blobs_and_trees_in_one_batch_and_none_for_missing(
    layouts: tuple[Git, Path],
) -> None:
    git, root = layouts
    found = git.objects(
        root,
        ["HEAD:README.md", "HEAD:nope", "HEAD:bases", "bad\nname", "HEAD:top/file.yaml"],
    )
    assert found[0] == GitObject("blob", b"x\n")
    assert found[1] is None
    assert found[2] is not None
    assert found[2].type == "tree"
    assert found[3] is None
    assert found[4] == GitObject("blob", b"x: 1\n")
    assert git.objects(root, []) == []
    assert git.objects(root, ["only\nnewlines"]) == [None]


def test_checkout_only_writes_the_directories_of_the_paths(layouts: tuple[Git, Path]) -> None:
    git, root = layouts
    done = checkout_only(git, root, ["patches/smp/memory.yaml", "./config/envs/a.env", "README.md"])
    assert done == {"patches/smp", "config/envs"}
    written = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }
    # cone mode: the root's own files come too
    assert written == {
        "README.md",
        "kustomization.yaml",
        "patches/smp/memory.yaml",
        "config/envs/a.env",
    }


def test_read_kustomization_is_read_from_the_object_store(layouts: tuple[Git, Path]) -> None:
    git, root = layouts
    assert read_kustomization(git, root, "bases/common") == (
        "bases/common/Kustomization",
        "resources: [deploy.yaml]\n",
    )
    assert read_kustomization(git, root, ".")[0] == "kustomization.yaml"
    with pytest.raises(ManifestError, match="directory does not exist"):
        read_kustomization(git, root, "nope")


def test_within_reading_every_walk_of_a_clone_is_one_cat_file_process(tmp_path: Path) -> None:
    c = tmp_path / "content"
    for env in ("staging", "production"):
        write(c / f"apps/web/overlays/{env}/kustomization.yaml", "resources: [../../base]\n")
    write(c / "apps/web/base/kustomization.yaml", "components: [../../../components/tls]\n")
    write(c / "components/tls/kustomization.yaml", "patches: [{path: ../../shared/tls.yaml}]\n")
    write(c / "shared/tls.yaml", "x: 1\n")
    git, root = cloned(tmp_path, c)
    started = Started()

    with observe_processes(started), git.reading(root):
        staging = kustomize_dirs(git, root, "apps/web/overlays/staging")
        production = kustomize_dirs(Git(git.remote), root, "apps/web/overlays/production")
        again = kustomize_dirs(git, root, "apps/web/overlays/staging")

    shared = {"apps/web/base", "components/tls", "shared"}
    assert staging == again == {"apps/web/overlays/staging", *shared}
    assert production == {"apps/web/overlays/production", *shared}
    # eight levels read (4 + 4 + 4 without the block) by one process, another Git's reads too
    assert started.commands == [[git.binary, "cat-file", "--batch"]]


def test_a_reset_in_the_clone_restarts_the_reader_which_sees_the_new_head(
    tmp_path: Path,
) -> None:
    c = tmp_path / "content"
    write(c / "app/kustomization.yaml", "resources: [a.yaml]\n")
    write(c / "app/a.yaml", "kind: A\n")
    git, root = cloned(tmp_path, c)
    other = tmp_path / "other"
    git.clone(other, "main")
    write(other / "app/kustomization.yaml", "resources: [b/b.yaml]\n")
    write(other / "app/b/b.yaml", "kind: B\n")
    identity = ["-c", "user.name=T", "-c", "user.email=t@x"]
    for args in (["add", "-A"], [*identity, "commit", "-qm", "b"]):
        subprocess.run(["git", *args], cwd=other, check=True)
    git.push(other, "main")
    started = Started()

    with observe_processes(started), git.reading(root):
        before = kustomize_dirs(git, root, "app")
        git.reset_hard(root, git.fetch(root, "main"))
        after = kustomize_dirs(git, root, "app")

    assert before == {"app"}
    assert after == {"app", "app/b"}
    readers = [command for command in started.commands if "cat-file" in command]
    assert len(readers) == 2


def test_a_reader_that_died_is_an_error_once_and_the_next_read_starts_another(
    tmp_path: Path,
) -> None:
    c = tmp_path / "content"
    write(c / "app/kustomization.yaml", "resources: [a.yaml]\n")
    write(c / "app/a.yaml", "kind: A\n")
    git, root = cloned(tmp_path, c)
    started = Started()

    with observe_processes(started), git.reading(root):
        assert kustomize_dirs(git, root, "app") == {"app"}
        # the reader's process is killed from outside (an OOM killer, an operator)
        reader = git_module._READERS.get()[os.path.abspath(root)]
        assert reader.running is not None
        os.kill(reader.running[1].pid, signal.SIGKILL)
        with pytest.raises(CommandFailedError) as caught:
            kustomize_dirs(git, root, "app")
        assert caught.value.command == ("git", "cat-file", "--batch")
        assert kustomize_dirs(git, root, "app") == {"app"}

    # the block ended normally although the first process had failed
    readers = [c for c in started.commands if "cat-file" in c]
    assert readers == [[git.binary, "cat-file", "--batch"]] * 2
