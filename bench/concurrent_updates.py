"""Twenty concurrent manifest updaters against one repository: total time, retries.

Ten updaters set images of ten different apps, ten set different images in
one shared kustomization; all start together (a barrier) and push to the same
branch.  Prints the wall time, the time per update and the push attempts per
update (1 = landed at the first push).
Run: ``.venv/bin/python bench/concurrent_updates.py [--updaters N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from conveyor.gitops.edit import FileEdit
from conveyor.gitops.kustomization import ImageEdit
from conveyor.gitops.update import Backoff, UpdateResult, update_manifest

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def repository(root: Path, updaters: int) -> Path:
    work = root / "work"
    half = updaters // 2
    for i in range(half):
        (work / f"apps/app{i}").mkdir(parents=True)
        (work / f"apps/app{i}/kustomization.yaml").write_text(
            f"images:\n- name: app{i}\n  newTag: old\n"
        )
    (work / "apps/shared").mkdir(parents=True)
    (work / "apps/shared/kustomization.yaml").write_text(
        "images:\n" + "".join(f"- name: c{i}\n  newTag: old\n" for i in range(updaters - half))
    )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "seed"]):
        subprocess.run(["git", *args], cwd=work, check=True, env=ENV)
    bare = root / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=ENV)
    return bare


def round_(root: Path, updaters: int, tag: str) -> tuple[float, list[UpdateResult]]:
    remote = repository(root / tag, updaters)
    half = updaters // 2
    jobs = [
        FileEdit(f"apps/app{i}/kustomization.yaml", ImageEdit(f"app{i}", None, tag, None))
        for i in range(half)
    ] + [
        FileEdit("apps/shared/kustomization.yaml", ImageEdit(f"c{i}", None, tag, None))
        for i in range(updaters - half)
    ]
    barrier = threading.Barrier(len(jobs) + 1)
    results: list[UpdateResult] = []
    lock = threading.Lock()

    def run(edit: FileEdit) -> None:
        barrier.wait()
        result = update_manifest(
            remote.as_uri(),
            "main",
            [edit],
            message=f"set {edit.path}",
            max_attempts=50,
            backoff=Backoff(initial=0.05, maximum=1.0),
        )
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    count = subprocess.run(
        ["git", "rev-list", "--count", "main"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    merges = subprocess.run(
        ["git", "rev-list", "--merges", "main"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if count != str(updaters + 1) or merges:
        raise SystemExit(f"an update was lost or merged: {count} commits, merges: {merges!r}")
    return elapsed, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updaters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as temp:
        for n in range(args.rounds):
            elapsed, results = round_(Path(temp), args.updaters, f"r{n}")
            attempts = [r.attempts for r in results]
            print(
                f"round {n + 1}: {len(results)} updates landed in {elapsed:.2f}s "
                f"({elapsed / len(results):.2f}s per update); attempts per update: "
                f"mean {statistics.mean(attempts):.2f}, median {statistics.median(attempts):g}, "
                f"max {max(attempts)}; retries in total {sum(attempts) - len(attempts)}"
            )


if __name__ == "__main__":
    main()
