"""Twenty concurrent updaters against one bare repository: nothing lost, history linear."""

from __future__ import annotations

import threading
from pathlib import Path

from gitops_helpers import git, make_remote, show

from conveyor.gitops.edit import FileEdit
from conveyor.gitops.kustomization import ImageEdit, find_image
from conveyor.gitops.update import Backoff, UpdateResult, update_manifest

APPS = 10
SHARED_IMAGES = 10


def seed(root: Path) -> None:
    for i in range(APPS):
        (root / f"apps/app{i}").mkdir(parents=True)
        (root / f"apps/app{i}/kustomization.yaml").write_text(
            f"resources: [deploy.yaml]\nimages:\n- name: app{i}\n  newTag: old\n"
        )
    (root / "apps/shared").mkdir(parents=True)
    (root / "apps/shared/kustomization.yaml").write_text(
        "# one app with many images, edited by many pipelines\nimages:\n"
        + "".join(f"- name: c{i}\n  newTag: old\n" for i in range(SHARED_IMAGES))
    )


def test_twenty_concurrent_updaters_all_land(tmp_path: Path) -> None:
    content = tmp_path / "content"
    seed(content)
    remote = make_remote(tmp_path, content)
    jobs = [
        (f"apps/app{i}/kustomization.yaml", ImageEdit(f"app{i}", None, f"new{i}", None))
        for i in range(APPS)
    ] + [
        ("apps/shared/kustomization.yaml", ImageEdit(f"c{i}", None, f"new{i}", None))
        for i in range(SHARED_IMAGES)
    ]
    barrier = threading.Barrier(len(jobs))
    results: list[UpdateResult] = []
    errors: list[BaseException] = []

    def run(path: str, edit: ImageEdit) -> None:
        barrier.wait()
        try:
            results.append(
                update_manifest(
                    str(remote),
                    "main",
                    [FileEdit(path, edit)],
                    message=f"set {edit.name}",
                    max_attempts=40,
                    backoff=Backoff(initial=0.05, maximum=0.8),
                )
            )
        except BaseException as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(results) == 20
    assert all(r.changed and r.commit for r in results)
    assert sum(r.attempts for r in results) >= 20
    subjects = git("log", "--format=%s", "main", cwd=remote).splitlines()
    assert sorted(subjects[:-1]) == sorted(f"set {edit.name}" for _, edit in jobs)
    assert git("rev-list", "--merges", "main", cwd=remote) == ""
    assert git("rev-list", "--count", "main", cwd=remote).strip() == "21"
    for path, edit in jobs:
        entry = find_image(show(remote, path), edit.name)
        assert entry is not None
        assert entry.new_tag == edit.new_tag
