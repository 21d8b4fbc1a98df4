"""SIGINT, SIGTERM and SIGHUP delivered to a real ``conveyor run`` of the example.

The example pipeline on the podman engine, as ``tests/e2e`` runs it (real
containers, registry, git, kustomize; only Trivy is a double).  A signal
during a long test stage, and during the manifest push to a slow git server:
afterwards no container of the run is left, no temporary directory, the
run's summary.json names the cancelled stages, the run span is closed, one
"interrupted by" line is on stderr and the exit code is 128 + the signal.  A
push under way lands and is recorded; nothing after it starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import e2e.conftest
from e2e.conftest import World, conveyor_executable, git, session_leftovers
from faults.processes import none_left
from git_http import serve_git_http

pytestmark = pytest.mark.timeout(300)

TOKEN = "sig-t0ken-value"
world = e2e.conftest.world  # the example as shipped, committed, with a bare manifest repo


def start(
    world: World, tmp: Path, *args: str, env: Mapping[str, str] = ()
) -> subprocess.Popen[str]:  # type: ignore[assignment]
    """``conveyor run`` in the example app, in the background, with its own TMPDIR."""
    environment = {**world.env("alpine-310.json"), "TMPDIR": str(tmp), **(env or {})}
    return subprocess.Popen(
        [str(conveyor_executable()), "run", "--engine", "podman", "--output", "plain", *args],
        cwd=world.app,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], what: str, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def containers_mentioning(*markers: str) -> list[str]:
    """Conveyor-labelled containers (running or not) whose inspect output names a marker."""
    listed = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", "label=io.conveyor.engine"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    if not listed:
        return []
    inspected = subprocess.run(
        ["podman", "inspect", *listed], capture_output=True, text=True, check=False, timeout=60
    )
    found = json.loads(inspected.stdout or "[]")
    return [c["Name"] for c in found if any(m in json.dumps(c) for m in markers)]


def last_run(app: Path) -> Path:
    return sorted((app / ".conveyor" / "runs").iterdir())[-1]


def summary_of(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / "artifacts" / "summary.json").read_text())
    return data


def spans_of(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "spans.jsonl").read_text().splitlines()]


def statuses(data: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {row["name"]: (row["status"], row["reason"]) for row in data["stages"]}


def interrupted_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "interrupted" in line]


def assert_clean(tmp: Path, *markers: str) -> None:
    """No container of the run, no temporary directory, no git or podman child left."""
    assert containers_mentioning(*markers) == []
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith("conveyor-")) == []
    for marker in markers:
        assert none_left(marker) == []


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_signal_during_the_test_stage_cancels_it_and_cleans_up(
    world: World, tmp_path: Path, signum: signal.Signals
) -> None:
    world.commit_app("signal during tests")
    nonce = uuid.uuid4().hex
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    # a test stage that would run for two minutes; --skip build: only test and report run
    command = f'["python3", "-c", "import time; time.sleep(120)  # {nonce}"]'
    # the example's lint gate is left out: it would race the signal (cancelled or done)
    env = {"CONVEYOR_STAGES__TEST__COMMAND": command, "CONVEYOR_STAGES__LINT__ENABLED": "false"}
    run = start(world, tmp, "--skip", "build", env=env)
    try:
        wait_for(lambda: bool(containers_mentioning(nonce)), "the test container")
        time.sleep(1)  # the container's command is running
        sent = time.monotonic()
        run.send_signal(signum)
        stdout, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    took = time.monotonic() - sent

    name = signal.Signals(signum).name
    assert run.returncode == 128 + signum, stdout + stderr
    assert took < 15  # not the two minutes of the test command
    assert "Traceback" not in stderr
    record = last_run(world.app)
    assert interrupted_lines(stderr) == [
        f"interrupted by {name}: cancelled test; run {record.name} recorded in "
        f"{os.path.relpath(record / 'artifacts' / 'summary.json', world.app)}"
    ]
    data = summary_of(record)
    assert data["ok"] is False
    assert statuses(data)["test"] == ("cancelled", f"cancelled: interrupted by {name}")
    assert statuses(data)["build"] == ("skipped", "requested with --skip")
    spans = {span["name"]: span for span in spans_of(record)}
    assert spans["conveyor.run"]["attributes"]["conveyor.status"] == "failed"
    assert spans["podman run"]["attributes"]["conveyor.status"] == "cancelled"
    assert_clean(tmp, nonce, str(world.app))


def test_a_sigterm_while_the_services_run_or_are_being_removed_leaves_none_of_them(
    world: World, tmp_path: Path
) -> None:
    world.commit_app("signal during the integration checks")
    nonce = uuid.uuid4().hex
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    # the integration checks wait, with the built image served beside them as "app";
    # smoke runs at the same time and its service's removal may be under way
    command = f'["python3", "-c", "import time; time.sleep(120)  # {nonce}"]'
    run = start(world, tmp, env={"CONVEYOR_STAGES__INTEGRATION__COMMAND": command})
    try:
        wait_for(lambda: bool(containers_mentioning(nonce)), "the integration checks' container")
        time.sleep(1)
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=90)
    finally:
        run.kill()

    assert run.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert "Traceback" not in stderr
    record = last_run(world.app)
    assert statuses(summary_of(record))["integration"][0] == "cancelled"
    assert session_leftovers(record) == ([], [])
    assert_clean(tmp, nonce, str(world.app))


def test_a_signal_during_the_manifest_push_lets_it_land_and_starts_nothing_after(
    world: World, tmp_path: Path
) -> None:
    sha = world.commit_app("signal during the push")
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()

    def slow_push(method: str, path: str) -> float:
        return 4.0 if method == "POST" and path.endswith("/git-receive-pack") else 0.0

    with serve_git_http(world.manifests, TOKEN, stall=slow_push) as remote:
        env = {
            "CONVEYOR_GITOPS__REPO": remote.url,
            "CONVEYOR_GITOPS__TOKEN_ENV": "MANIFEST_TOKEN",
            "MANIFEST_TOKEN": TOKEN,
        }
        run = start(world, tmp, env=env)
        try:
            wait_for(
                lambda: ("POST", "/manifests.git/git-receive-pack") in remote.requests,
                "the push",
                within=240,
            )
            run.send_signal(signal.SIGINT)
            stdout, stderr = run.communicate(timeout=60)
        finally:
            run.kill()

    assert run.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    record = last_run(world.app)
    assert interrupted_lines(stderr) == [
        f"interrupted by SIGINT: cancelled policy; run {record.name} recorded in "
        f"{os.path.relpath(record / 'artifacts' / 'summary.json', world.app)}"
    ]
    data = summary_of(record)
    found = statuses(data)
    # the push under way landed and is recorded; the stage after it never started
    assert found["manifest"] == ("success", "")
    assert found["policy"] == ("cancelled", "not started: interrupted by SIGINT")
    assert {found[name][0] for name in ("test", "build", "scan", "smoke", "publish")} == {"success"}
    head = git("rev-parse", "refs/heads/main", cwd=world.manifests)
    assert data["outputs"]["manifest"]["commit"] == head
    assert sha in git("log", "-1", "--format=%B", "refs/heads/main", cwd=world.manifests)
    spans = {span["name"]: span for span in spans_of(record)}
    assert spans["git push"]["attributes"]["conveyor.status"] == "success"  # not cut
    assert spans["conveyor.run"]["end"] >= spans["git push"]["end"]
    assert TOKEN not in (record / "spans.jsonl").read_text() + stdout + stderr
    assert_clean(tmp, str(world.app), sha)
