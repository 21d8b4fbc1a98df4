"""``conveyor run`` with a run store that cannot be written: before the run, or mid-run.

Real filesystems (a read-only tmpfs, a 64 KiB tmpfs filled up) mounted at
``.conveyor/runs`` of a real project, the real console script, and for the
mid-run case a real podman build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tmpfs import fill, tmpfs

CONVEYOR = Path(sys.executable).parent / "conveyor"
SHA = "0123456789abcdef0123456789abcdef01234567"

pytestmark = pytest.mark.timeout(300)


def project(root: Path, base_image: str) -> Path:
    root.mkdir()
    (root / "conveyor.toml").write_text(
        '[app]\nname = "store-fault"\n\n'
        '[registry]\nhost = "127.0.0.1:5000"\nrepository = "conveyor-test/store-fault"\n\n'
        # build and report only: scan and smoke would need the disk (image.tar) or a port
        "[stages.scan]\nenabled = false\n\n[stages.smoke]\nenabled = false\n"
    )
    (root / "Dockerfile").write_text(f"FROM {base_image}\nCOPY hello.txt /hello.txt\n")
    (root / "hello.txt").write_text("hello\n")
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    return subprocess.run(
        [str(CONVEYOR), "run", "--engine", "podman", "--output", "plain", *args],
        cwd=root,
        env={**env, "CONVEYOR_SOURCE_SHA": SHA, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )


def test_a_read_only_store_stops_the_run_before_any_stage(tmp_path: Path) -> None:
    root = project(tmp_path / "app", "localhost/conveyor/python:3.11")
    with tmpfs(root / ".conveyor" / "runs", read_only=True) as runs:
        done = run(root)

    assert done.returncode == 1
    assert done.stdout == ""  # no engine chosen, no stage started
    assert done.stderr == (
        f"error: {runs}: cannot be written: Read-only file system\n"
        "  hint: make .conveyor/runs (next to conveyor.toml) writable, "
        "or run from a writable checkout\n"
    )


@pytest.mark.podman
def test_a_store_that_fills_up_mid_run_is_one_warning_and_the_run_still_succeeds(
    tmp_path: Path, base_image: str
) -> None:
    root = project(tmp_path / "app", base_image)
    with tmpfs(root / ".conveyor" / "runs") as runs:
        # the run's directory is made and found writable; then the disk is full
        fill(runs)
        done = run(root, "--skip", "publish")  # build, and the report stage (always)
        (run_dir,) = (d for d in runs.iterdir() if d.is_dir())
        files = sorted(
            f"{p.relative_to(run_dir)} ({p.stat().st_size if p.is_file() else 'dir'})"
            for p in run_dir.rglob("*")
        )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "build: success" in done.stdout
    assert "report: success" in done.stdout
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"warning: the run record is incomplete (spans of run {run_dir.name}: No space left on "
        f"device; {run_dir}/artifacts/summary.json: No space left on device); the run itself "
        "succeeded and its exit code says so"
    ]
    # nothing half-written: no empty summary.json, no torn span line, no temporary file
    assert files in (["artifacts (dir)"], ["artifacts (dir)", "spans.jsonl (0)"]), files
