"""Secrets end to end: used by the run, shown nowhere.

One green run of the example with three secrets from the environment:

* the registry password (``registry.password_env``); the test registry has no
  authentication, so the push simply succeeds with the credentials unused;
* the manifest repository token (``gitops.token_env``), which the manifest and
  policy stages need: the repository is served over real smart HTTP
  (``git http-backend``) that admits only that token;
* a test secret (``stages.test.secrets`` and ``stages.build.secrets``) that the
  app's own test prints and its Dockerfile reads from a secret mount.

Each random value must then be absent from the command's output, every file
the run left (run directory, spans, artifacts, logs, the checkouts' ``.git``
directories), the manifest repository's history, and the image's
configuration, labels and history, locally and in the registry.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from pathlib import Path

import pytest

from e2e.conftest import World, git, token_git_remote

pytestmark = pytest.mark.timeout(600)

PRINTS_SECRET = '''\
"""Prints the secret the pipeline hands to the test stage (the leak under test)."""

import os
import sys


def test_secret_reaches_the_tests() -> None:
    value = os.environ["MY_SECRET"]
    print(f"MY_SECRET={value}")
    print(f"MY_SECRET on stderr={value}", file=sys.stderr)
    assert len(value) == 32
'''


def files_containing(root: Path, values: dict[str, str]) -> list[str]:
    """``name: path`` for every regular file under ``root`` holding one of ``values``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{name}: {path}" for name, v in values.items() if v.encode() in data]
    return found


def texts_containing(texts: dict[str, str], values: dict[str, str]) -> list[str]:
    """``name: where`` for every text (by where it came from) holding one of ``values``."""
    return [
        f"{name}: {where}"
        for where, text in texts.items()
        for name, value in values.items()
        if value in text
    ]


def output(*argv: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    ).stdout


def test_secrets_are_used_but_never_shown(world: World) -> None:
    values = {
        "REG_PW": secrets.token_hex(16),
        "GIT_TOKEN": secrets.token_hex(16),
        "MY_SECRET": secrets.token_hex(16),
    }
    (world.app / "tests" / "test_secret.py").write_text(PRINTS_SECRET)
    dockerfile = world.app / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "COPY app.py .",
            "COPY app.py .\nRUN --mount=type=secret,id=MY_SECRET test -s /run/secrets/MY_SECRET",
        )
    )
    sha = world.commit_app("secrets")
    # temporary files (auth.json, policy clones, run scratch) land here, to be searched
    scratch = world.tmp / "scratch"
    scratch.mkdir()

    with token_git_remote(world.manifests, values["GIT_TOKEN"]) as remote:
        done = world.run(
            "alpine-310.json",
            env={
                **values,
                "TMPDIR": str(scratch),
                "CONVEYOR_REGISTRY__PASSWORD_ENV": "REG_PW",
                "CONVEYOR_GITOPS__TOKEN_ENV": "GIT_TOKEN",
                "CONVEYOR_GITOPS__REPO": remote.url,
                "CONVEYOR_STAGES__TEST__SECRETS": "['MY_SECRET']",
                "CONVEYOR_STAGES__BUILD__SECRETS": "['MY_SECRET']",
                "CONVEYOR_STAGES__TEST__COMMAND": (
                    "['python3', '-m', 'pytest', '-q', '-s', '--junitxml=junit.xml']"
                ),
            },
        )

    assert done.returncode == 0, done.stdout + done.stderr
    # each secret was really used: the git server admitted the token, the
    # test saw MY_SECRET (and its output was masked), the image was pushed
    assert remote.expected in remote.authorizations
    run_dir = next((world.app / ".conveyor" / "runs").iterdir())
    log = (run_dir / "artifacts" / "test" / "output.log").read_text()
    assert "MY_SECRET=***" in log
    assert "MY_SECRET on stderr=***" in log
    assert "5 passed" in log
    digest = world.digest(sha)
    assert f"published {world.registry}/hello:{sha}@{digest}" in done.stdout
    checkout = world.manifest_checkout()
    assert sha[:12] in git("log", "-1", "--format=%B", cwd=checkout)

    local = f"localhost/conveyor/hello:{sha}"
    texts = {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "manifest history": git("log", "-p", "--all", "--format=%H%n%an %ae%n%B", cwd=checkout),
        "manifest config": (world.manifests / "config").read_text(),
        "podman image inspect": output("podman", "image", "inspect", local),
        "podman history": output(
            "podman", "history", "--no-trunc", "--format", "{{.CreatedBy}} {{.Comment}}", local
        ),
        "registry config": output(
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--config",
            f"docker://{world.registry}/hello:{sha}",
        ),
    }
    assert (
        json.loads(texts["podman image inspect"])[0]["Labels"]["org.opencontainers.image.revision"]
        == sha
    )
    assert "--mount=type=secret,id=MY_SECRET" in texts["podman history"]
    assert texts_containing(texts, values) == []
    # every file left under the test's directory: the app and its .git, the
    # run directory (spans.jsonl, artifacts, logs), the manifest repository and
    # its clones, the Trivy double's call log
    assert (run_dir / "spans.jsonl").is_file()
    # the registry credentials travel base64-encoded in a temporary auth.json
    encoded = {
        f"{name} in base64": base64.b64encode(f"{user}:{values[name]}".encode()).decode()
        for name, user in (("REG_PW", "conveyor"), ("GIT_TOKEN", "x-access-token"))
    }
    assert files_containing(world.tmp, {**values, **encoded}) == []
    assert sorted(p.name for p in scratch.iterdir() if p.name.startswith("conveyor-")) == []


FAILS_WITH_SECRET = '''\
"""Fails after printing the secret: the failure message carries the output's tail."""

import os


def test_fails_after_printing_the_secret() -> None:
    print(f"MY_SECRET={os.environ['MY_SECRET']}")
    raise AssertionError(f"secret was {os.environ['MY_SECRET']}")
'''


def test_secret_in_a_failing_tests_output_is_masked_in_the_error(world: World) -> None:
    value = secrets.token_hex(16)
    (world.app / "tests" / "test_secret.py").write_text(FAILS_WITH_SECRET)
    world.commit_app("failing secret test")

    done = world.run(
        "alpine-310.json",
        "--only",
        "test",
        env={"MY_SECRET": value, "CONVEYOR_STAGES__TEST__SECRETS": "['MY_SECRET']"},
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "error in stage test: tests failed (exit code 1): 5 tests, 1 failed" in done.stderr
    # the output's tail in the error shows where the secret was, masked
    assert "AssertionError: secret was ***" in done.stderr
    assert value not in done.stdout + done.stderr
    # the JUnit report is kept (CI shows it), with the failure message masked
    run_dir = next((world.app / ".conveyor" / "runs").iterdir())
    assert "secret was ***" in (run_dir / "artifacts" / "test" / "junit.xml").read_text()
    assert files_containing(world.tmp, {"MY_SECRET": value}) == []


def test_secret_in_a_failing_builds_log_is_masked_in_the_error(world: World) -> None:
    value = secrets.token_hex(16)
    dockerfile = world.app / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "COPY app.py .",
            "COPY app.py .\n"
            'RUN --mount=type=secret,id=MY_SECRET echo "build saw $(cat /run/secrets/MY_SECRET)"'
            " && exit 3",
        )
    )
    world.commit_app("failing secret build")

    done = world.run(
        "alpine-310.json",
        "--only",
        "build",
        env={"MY_SECRET": value, "CONVEYOR_STAGES__BUILD__SECRETS": "['MY_SECRET']"},
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "error in stage build: command failed with exit code 3: podman build" in done.stderr
    assert "--secret id=MY_SECRET,env=MY_SECRET" in done.stderr
    assert "build saw ***" in done.stderr
    assert value not in done.stdout + done.stderr
    assert files_containing(world.tmp, {"MY_SECRET": value}) == []
