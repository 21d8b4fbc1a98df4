"""Usage errors and Ctrl-C through the real console script: one line, the code from the table.

typer vendors click as ``typer._click`` since 0.2x while older versions use
the separate ``click`` package; the console script must map both the same
way, so these tests run the installed ``conveyor`` executable, never an
in-process runner.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CONVEYOR = Path(sys.executable).parent / "conveyor"

USAGE_ERRORS = [
    (["run", "--nope"], "conveyor run: No such option: --nope"),
    (["run", "--on-failure", "explode"], "'--on-failure': 'explode' is not one of"),
    (["run", "--engine", "docker"], "'--engine': 'docker' is not one of"),
    (["run", "--output", "fancy"], "'--output': 'fancy' is not one of"),
    (["run", "--capacity", "0"], "'--capacity'"),
    (["run", "--capacity", "many"], "'--capacity'"),
    (["run", "--capacity"], "Option '--capacity' requires an argument"),
    (["rollback", "staging", "--steps", "0"], "'--steps'"),
    (["rollback"], "conveyor rollback: Missing argument"),
    (["graph", "--format", "svg"], "'--format' / '-f': 'svg' is not one of"),
    (["manifest", "set-image"], "conveyor manifest set-image: Missing argument"),
    (["promote", "--from", "staging"], "Missing option '--to'"),
    (["trace", "show", "--width", "3"], "'--width'"),
    (["nope"], "conveyor: No such command 'nope'"),
]


def run(args: list[str], cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONVEYOR), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """Every case run once, all at the same time: ``' '.join(args)`` -> (code, stdout, stderr)."""
    cwd = tmp_path_factory.mktemp("usage")
    processes = {
        " ".join(args): subprocess.Popen(
            [str(CONVEYOR), *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        for args, _ in USAGE_ERRORS
    }
    results = {}
    for key, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        results[key] = (process.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize(
    ("args", "expected"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS]
)
def test_a_usage_error_is_one_line_and_exit_2(
    args: list[str], expected: str, outcomes: dict[str, tuple[int, str, str]]
) -> None:
    code, stdout, stderr = outcomes[" ".join(args)]

    assert code == 2, stderr
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: conveyor"), lines[0]
    assert expected in lines[0]
    assert lines[0].endswith("--help')"), lines[0]


def test_a_bare_group_shows_its_help_and_exits_2(tmp_path: Path) -> None:
    done = run(["manifest"], tmp_path)

    assert done.returncode == 2
    assert "set-image" in done.stdout
    assert "update" in done.stdout
    assert "Traceback" not in done.stderr


def test_help_and_version_still_exit_0(tmp_path: Path) -> None:
    help_text = run(["run", "--help"], tmp_path)
    version = run(["--version"], tmp_path)

    assert help_text.returncode == 0
    assert "--on-failure" in help_text.stdout
    assert version.returncode == 0
    assert version.stdout.startswith("conveyor ")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers (a hung git remote)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/manifests.git"


def test_ctrl_c_says_interrupted_and_exits_130(tmp_path: Path, silent_server: str) -> None:
    (tmp_path / "conveyor.toml").write_text(
        '[app]\nname = "hello"\n\n[registry]\nhost = "127.0.0.1:5000"\nrepository = "hello"\n\n'
        f'[gitops]\nrepo = "{silent_server}"\n\n'
        '[gitops.environments.staging]\npath = "apps/hello/overlays/staging"\n'
    )
    image = "127.0.0.1:5000/hello:" + "a" * 40 + "@sha256:" + "b" * 64
    process = subprocess.Popen(
        [str(CONVEYOR), "manifest", "update", "staging", image],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the terminal's whole process group
    )
    try:
        time.sleep(2.0)  # git is now waiting for the remote's answer
        assert process.poll() is None, process.communicate()
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "interrupted"
    assert stdout == ""
