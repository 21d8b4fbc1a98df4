"""Time one manifest update against a shell baseline on a large manifest repository.

Generates a bare repository with 2,000 apps (one kustomization each) and 500
commits, then times, side by side and several times each:

* ``update_manifest`` setting one app's image (sparse clone: only the edited
  file's directory is checked out; edit, commit, push),
* the same with every file checked out, as before the sparse clone (a no-op
  ``verify`` callback without ``sparse`` asks for the whole tree), and
* the shell baseline ``git clone --depth 1``, ``sed`` edit, ``git commit``, ``git push``
  (it does not delete its clone; ``update_manifest`` does).

Prints the medians and their ratios (target: update_manifest <= 1.5x baseline).
Run: ``.venv/bin/python bench/manifest_update.py [--apps N] [--commits N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from conveyor.gitops.edit import FileEdit
from conveyor.gitops.kustomization import ImageEdit
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


def generate(root: Path, apps: int, commits: int) -> Path:
    """A bare repository with ``apps`` kustomizations and ``commits`` commits."""
    work = root / "work"
    for i in range(apps):
        path = work / f"apps/app{i:04d}/overlays/staging"
        path.mkdir(parents=True)
        (path / "kustomization.yaml").write_text(kustomization(i, "v0"))
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


def ours(remote: Path, app: int, tag: str, *, whole: bool = False) -> float:
    edit = FileEdit(
        f"apps/app{app:04d}/overlays/staging/kustomization.yaml",
        ImageEdit(f"app{app:04d}", f"myacr.azurecr.io/app{app:04d}", tag, None),
    )
    start = time.perf_counter()
    result = update_manifest(
        remote.as_uri(),
        "main",
        [edit],
        message=f"deploy {tag}",
        verify=_whole_tree if whole else None,
    )
    elapsed = time.perf_counter() - start
    assert result.changed, "the benchmark must measure a real update"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as temp:
        root = Path(temp)
        start = time.perf_counter()
        remote = generate(root, args.apps, args.commits)
        print(
            f"repository: {args.apps} apps, {args.commits} commits "
            f"(generated in {time.perf_counter() - start:.1f}s)"
        )
        shell_times: list[float] = []
        our_times: list[float] = []
        whole_times: list[float] = []
        for run in range(args.runs):
            # interleaved so that caches warm all three the same way
            shell_times.append(baseline(remote, root, 17, f"shell{run}"))
            our_times.append(ours(remote, 17, f"ours{run}"))
            whole_times.append(ours(remote, 17, f"whole{run}", whole=True))
        shell = statistics.median(shell_times)
        print(f"{'':34}{'median':>10}{'min':>10}{'max':>10}{'/ shell':>10}")
        for name, times in (
            ("shell baseline", shell_times),
            ("update_manifest (sparse)", our_times),
            ("update_manifest (every file)", whole_times),
        ):
            median = statistics.median(times)
            print(
                f"{name:34}{median:>9.3f}s{min(times):>9.3f}s{max(times):>9.3f}s"
                f"{median / shell:>9.2f}x"
            )
        ratio = statistics.median(our_times) / shell
        print(f"ratio update_manifest (sparse) / shell: {ratio:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
