"""scripts/demo-source.sh: the demo's source commit never holds the run store (.conveyor/)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "demo-source.sh"


def commit(app: Path) -> str:
    done = subprocess.run(
        [str(SCRIPT), str(REPO / "examples" / "hello"), str(app)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def tracked(app: Path) -> list[str]:
    return subprocess.run(
        ["git", "-C", str(app), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_runs_and_reports_are_never_committed(tmp_path: Path) -> None:
    app = tmp_path / "hello"
    first = commit(app)
    # what a run leaves: records, reports, a tarball
    run = app / ".conveyor" / "runs" / "20261202T000000Z-abcdef"
    (run / "artifacts").mkdir(parents=True)
    (run / "spans.jsonl").write_text("{}\n")
    (run / "artifacts" / "image.tar").write_bytes(b"\0" * 1024)

    second = commit(app)

    assert len(first) == len(second) == 40
    assert first != second
    files = tracked(app)
    assert "conveyor.toml" in files
    assert "BUILT_AT" in files
    assert not [f for f in files if f.startswith(".conveyor")], files
    assert run.joinpath("spans.jsonl").exists()  # kept on disk, only not committed


def test_a_run_store_an_older_demo_committed_is_untracked(tmp_path: Path) -> None:
    app = tmp_path / "hello"
    commit(app)
    leftover = app / ".conveyor" / "runs" / "old" / "spans.jsonl"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("{}\n")
    subprocess.run(["git", "-C", str(app), "add", "-f", str(leftover)], check=True)
    subprocess.run(
        ["git", "-C", str(app), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        check=True,
    )
    assert ".conveyor/runs/old/spans.jsonl" in tracked(app)

    commit(app)

    assert not [f for f in tracked(app) if f.startswith(".conveyor")]
