"""A reader that closes Conveyor's standard output ends no command (``conveyor plan | head``).

The real console script writes into a real pipe whose reading end is
closed before it starts, so its first write fails with EPIPE: help, the
fast graph and a whole ``conveyor run`` (a real podman build) go on to
their own outcome, print no ``Broken pipe`` and exit with their own code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONVEYOR = Path(sys.executable).parent / "conveyor"
REPO = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"


def into_closed_pipe(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``conveyor ARGS`` with stdout a pipe nobody reads any more: (exit code, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [str(CONVEYOR), *args],
            cwd=cwd,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=240,
            env={**env, "COLUMNS": "120"},
        )
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    "args",
    [["--help"], ["run", "--help"], ["graph"], ["graph", "--format", "mermaid"], ["plan"]],
    ids=" ".join,
)
def test_a_closed_stdout_is_not_an_error(args: list[str]) -> None:
    code, stderr = into_closed_pipe(args, REPO / "examples" / "hello", dict(os.environ))

    assert (code, stderr) == (0, "")


def test_a_run_whose_reader_left_runs_to_its_end(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "conveyor.toml").write_text(
        '[app]\nname = "closed-stdout"\n\n'
        '[registry]\nhost = "127.0.0.1:5000"\nrepository = "conveyor-test/closed-stdout"\n\n'
        "[stages.scan]\nenabled = false\n\n[stages.smoke]\nenabled = false\n"
    )
    (root / "Dockerfile").write_text("FROM localhost/conveyor/python:3.11\nCOPY hi.txt /hi.txt\n")
    (root / "hi.txt").write_text("hi\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}

    code, stderr = into_closed_pipe(
        ["run", "--engine", "podman", "--output", "plain", "--only", "build"],
        root,
        {**env, "CONVEYOR_SOURCE_SHA": SHA},
    )

    assert "Broken pipe" not in stderr
    assert code == 0, stderr
    (run,) = (root / ".conveyor" / "runs").iterdir()
    summary = json.loads((run / "artifacts" / "summary.json").read_text())
    assert {s["name"]: s["status"] for s in summary["stages"]}["build"] == "success"
