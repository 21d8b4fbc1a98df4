"""Time one manifest update against a shell baseline on a large manifest repository.

Generates a bare repository with 2,000 apps (one kustomization each) and 500
commits, then times, side by side and several times each:

* ``update_manifest`` setting one app's image (sparse clone: only the edited
  file's directory is checked out; edit, commit, push),
* the same with every file checked out, as before the sparse clone (a no-op
  ``verify`` callback without ``sparse`` asks for the whole tree), and
* the shell baseline ``git clone --depth 1``, ``sed`` edit, ``git commit``, ``git push``
  (it does not delete its clone; ``update_manifest`` does).

With ``--render`` every app also gets a base (so the repository holds three
files per app) and two more rows time the manifest stage's path: the edited
overlay rendered by ``kubectl kustomize`` before the commit, once with only
its kustomize closure checked out (``sparse=[overlay]``) and once with every
file.

Prints the medians and their ratios (target: update_manifest <= 1.5x baseline).
Run: ``.venv/bin/python bench/manifest_update.py [--apps N] [--commits N] [--runs N] [--render]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from conveyor.gitops.edit import FileEdit
from conveyor.gitops.kustomization import ImageEdit
from conveyor.gitops.renderer import render
from conveyor.gitops.update import update_manifest

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def kustomization(i: int, tag: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources:\n  - ../../base\n"
        "images:\n"
        f"  - name: app{i:04d}\n"
        f"    newName: myacr.azurecr.io/app{i:04d}\n"
        f"    newTag: {tag}\n"
    )


def base(i: int) -> dict[str, str]:
    return {
        "kustomization.yaml": "resources:\n  - deployment.yaml\n",
        "deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\n"
            f"metadata:\n  name: app{i:04d}\n"
            "spec:\n  template:\n    spec:\n      containers:\n"
            f"        - name: app\n          image: app{i:04d}\n"
        ),
    }


def generate(root: Path, apps: int, commits: int, *, bases: bool = False) -> Path:
    """A bare repository with ``apps`` kustomizations (and bases) and ``commits`` commits."""
    work = root / "work"
    for i in range(apps):
        path = work / f"apps/app{i:04d}/overlays/staging"
        path.mkdir(parents=True)
        (path / "kustomization.yaml").write_text(kustomization(i, "v0"))
        if bases:
            (work / f"apps/app{i:04d}/base").mkdir()
            for name, text in base(i).items():
                (work / f"apps/app{i:04d}/base" / name).write_text(text)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, check=True, env=ENV)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True, env=ENV)
    subprocess.run(["git", "commit", "-q", "-m", "seed"], cwd=work, check=True, env=ENV)
    # the remaining commits through fast-import: one changed file each
    stream: list[str] = []
    parent = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, check=True, capture_output=True, text=True, env=ENV
    ).stdout.strip()
    for n in range(1, commits):
        i = (n * 7919) % apps
        data = kustomization(i, f"v{n}")
        message = f"deploy app{i:04d} v{n}"
        stream += [
            "commit refs/heads/main",
            f"committer bench <bench@example.com> {1700000000 + n} +0000",
            f"data {len(message)}",
            message,
            f"from {parent}" if n == 1 else "",
            f"M 100644 inline apps/app{i:04d}/overlays/staging/kustomization.yaml",
            f"data {len(data.encode())}",
            data,
        ]
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=work,
        input="\n".join(line for line in stream if line != "") + "\n",
        text=True,
        check=True,
        env=ENV,
    )
    bare = root / "manifests.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=ENV)
    return bare


def baseline(remote: Path, scratch: Path, app: int, tag: str) -> float:
    target = scratch / f"shell-{tag}"
    file = f"apps/app{app:04d}/overlays/staging/kustomization.yaml"
    script = (
        f"git clone -q --depth 1 --single-branch --branch main {remote.as_uri()} {target} && "
        f"sed -i 's/newTag: .*/newTag: {tag}/' {target}/{file} && "
        f"git -C {target} commit -q -am 'deploy {tag}' && "
        f"git -C {target} push -q origin HEAD:main"
    )
    start = time.perf_counter()
    subprocess.run(["bash", "-c", script], check=True, env=ENV)
    return time.perf_counter() - start


def _whole_tree(root: Path) -> None:
    """A no-op check: given without ``sparse``, it makes update_manifest check out every file."""


def _renders(app: int) -> Callable[[Path], None]:
    def verify(root: Path) -> None:
        assert "kind: Deployment" in render(root / overlay(app))

    return verify


def overlay(app: int) -> str:
    return f"apps/app{app:04d}/overlays/staging"


def ours(
    remote: Path,
    app: int,
    tag: str,
    *,
    verify: Callable[[Path], None] | None = None,
    sparse: Sequence[str] | None = None,
) -> float:
    edit = FileEdit(
        f"{overlay(app)}/kustomization.yaml",
        ImageEdit(f"app{app:04d}", f"myacr.azurecr.io/app{app:04d}", tag, None),
    )
    start = time.perf_counter()
    result = update_manifest(
        remote.as_uri(), "main", [edit], message=f"deploy {tag}", verify=verify, sparse=sparse
    )
    elapsed = time.perf_counter() - start
    assert result.changed, "the benchmark must measure a real update"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--render", action="store_true", help="give apps a base and time rendered updates too"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as temp:
        root = Path(temp)
        start = time.perf_counter()
        remote = generate(root, args.apps, args.commits, bases=args.render)
        print(
            f"repository: {args.apps} apps{' with bases' if args.render else ''}, "
            f"{args.commits} commits (generated in {time.perf_counter() - start:.1f}s)"
        )
        rows: dict[str, Callable[[str], float]] = {
            "shell baseline": lambda tag: baseline(remote, root, 17, tag),
            "update_manifest (sparse)": lambda tag: ours(remote, 17, tag),
            "update_manifest (every file)": lambda tag: ours(remote, 17, tag, verify=_whole_tree),
        }
        if args.render:
            rows["+ render (sparse closure)"] = lambda tag: ours(
                remote, 17, tag, verify=_renders(17), sparse=[overlay(17)]
            )
            rows["+ render (every file)"] = lambda tag: ours(remote, 17, tag, verify=_renders(17))
        times: dict[str, list[float]] = {name: [] for name in rows}
        for run in range(args.runs):
            # interleaved so that caches warm every variant the same way
            for n, (name, timed) in enumerate(rows.items()):
                times[name].append(timed(f"r{run}v{n}"))
        shell = statistics.median(times["shell baseline"])
        print(f"{'':34}{'median':>10}{'min':>10}{'max':>10}{'/ shell':>10}")
        for name, measured in times.items():
            median = statistics.median(measured)
            print(
                f"{name:34}{median:>9.3f}s{min(measured):>9.3f}s{max(measured):>9.3f}s"
                f"{median / shell:>9.2f}x"
            )
        ratio = statistics.median(times["update_manifest (sparse)"]) / shell
        print(f"ratio update_manifest (sparse) / shell: {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
