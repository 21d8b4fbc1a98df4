"""A large-ish generated manifest repository (200 apps) for the sparse-clone tests.

Every app has a base (deployment), a staging overlay that pulls in a shared
component from a sibling tree (``components/replicas``: a patch file next to
its kustomization) and generates a ConfigMap from a file, and a production
overlay.  A few files sit in the root and in ``apps/`` to show what a cone
brings along.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gitops_helpers import GIT_ENV, git

APPS = 200
DIGEST = "sha256:" + "6" * 64


def app(i: int) -> str:
    return f"app{i:03d}"


def overlay(i: int, env: str = "staging") -> str:
    return f"apps/{app(i)}/overlays/{env}"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def seed(root: Path, apps: int = APPS) -> None:
    """Write the repository's files under ``root``."""
    write(root / "README.md", "manifests\n")
    write(root / "apps/OWNERS", "platform-team\n")
    write(
        root / "components/replicas/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
        "patches:\n- path: replicas.yaml\n  target:\n    kind: Deployment\n",
    )
    write(
        root / "components/replicas/replicas.yaml",
        "- op: add\n  path: /spec/replicas\n  value: 3\n",
    )
    write(
        root / "components/unused/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
    )
    for i in range(apps):
        name = app(i)
        base = root / f"apps/{name}/base"
        write(base / "kustomization.yaml", "resources:\n- deployment.yaml\n")
        write(
            base / "deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\n"
            f"metadata:\n  name: {name}\n"
            f"spec:\n  selector:\n    matchLabels: {{app: {name}}}\n"
            f"  template:\n    metadata:\n      labels: {{app: {name}}}\n"
            f"    spec:\n      containers:\n      - name: {name}\n        image: {name}\n",
        )
        staging = root / overlay(i)
        write(
            staging / "kustomization.yaml",
            "resources:\n- ../../base\n"
            "components:\n- ../../../../components/replicas\n"
            "configMapGenerator:\n"
            f"- name: {name}-settings\n  files:\n  - app.properties=settings.properties\n"
            f"images:\n- name: {name}\n  newName: myacr.azurecr.io/{name}\n  newTag: v1\n",
        )
        write(staging / "settings.properties", f"greeting=hello from {name}\n")
        write(
            root / overlay(i, "production") / "kustomization.yaml",
            f"resources:\n- ../../base\nimages:\n- name: {name}\n  newTag: v0\n",
        )


def files(root: Path) -> set[str]:
    """The files of a work tree (``.git`` left out), relative to it."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if (p.is_file() or p.is_symlink()) and ".git" not in p.relative_to(root).parts
    }


def tracked(bare: Path, rev: str = "main") -> set[str]:
    """Every file of ``rev`` in a bare repository."""
    return set(git("ls-tree", "-r", "--name-only", rev, cwd=bare).splitlines())


def commit_in_bare(bare: Path, change: dict[str, str], message: str) -> str:
    """Another pipeline's commit on ``main`` of ``bare``, made without a work tree.

    Returns:
        The new commit.
    """
    index = bare / "other-pipeline.index"
    env = {**os.environ, **GIT_ENV, "GIT_INDEX_FILE": str(index)}

    def run(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=bare,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    run("read-tree", "main")
    for path, text in change.items():
        blob = run("hash-object", "-w", "--stdin", stdin=text)
        run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    tree = run("write-tree")
    commit = run("commit-tree", tree, "-p", "main", "-m", message)
    run("update-ref", "refs/heads/main", commit)
    index.unlink()
    return commit
