"""The example pipeline's world: a committed app, a bare manifest repository, a registry."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from git_http import serve_git_http
from telemetry.conftest import otlp_receiver  # noqa: F401 - the OTLP/HTTP receiver fixture

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TRIVY_DOUBLE = REPO / "tests" / "doubles" / "trivy"
TRIVY_REPORTS = REPO / "tests" / "scan" / "resources" / "trivy"


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass
class World:
    """Everything one end-to-end run touches, all real and all under tmp_path."""

    app: Path
    manifests: Path
    registry: str
    trivy_log: Path
    tmp: Path

    def commit_app(self, message: str) -> str:
        # A nonce keeps SHAs unique: two worlds committing the same message in
        # the same second would otherwise share a SHA, hence an image tag.
        (self.app / "CHANGES").write_text(f"{message}\n{uuid.uuid4().hex}\n")
        git("add", "-A", cwd=self.app)
        git("commit", "-q", "-m", message, cwd=self.app)
        return git("rev-parse", "HEAD", cwd=self.app)

    def env(self, report: str) -> dict[str, str]:
        return {
            **os.environ,
            "CI": "true",
            "CONVEYOR_REGISTRY__HOST": self.registry,
            "CONVEYOR_GITOPS__REPO": str(self.manifests),
            "CONVEYOR_POLICY__ALLOWED_REGISTRIES": "['^127\\.0\\.0\\.1:[0-9]+/.+$']",
            "CONVEYOR_STAGES__SCAN__TRIVY": str(TRIVY_DOUBLE),
            "TRIVY_DOUBLE_REPORT": str(TRIVY_REPORTS / report),
            "TRIVY_DOUBLE_LOG": str(self.trivy_log),
        }

    def run(
        self,
        report: str,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        engine: str = "podman",
    ) -> subprocess.CompletedProcess[str]:
        """Run ``conveyor run`` in the app; ``env`` adds variables (``None`` removes one)."""
        environment = self.env(report)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        return subprocess.run(
            [str(conveyor_executable()), "run", "--engine", engine, "--output", "plain", *args],
            cwd=self.app,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def manifest_refs(self) -> str:
        """Every ref of the bare manifest repository with the object it points at."""
        return git("for-each-ref", "--format=%(refname) %(objectname)", cwd=self.manifests)

    def push_manifests(self, files: Mapping[str, str], message: str) -> str:
        """Commit ``files`` (path in the repository -> text) to the manifests' main; the commit."""
        checkout = self.manifest_checkout()
        for relative, text in files.items():
            (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
            (checkout / relative).write_text(text)
        git("add", "-A", cwd=checkout)
        git("commit", "-q", "-m", message, cwd=checkout)
        git("push", "-q", "origin", "HEAD:main", cwd=checkout)
        return git("rev-parse", "HEAD", cwd=checkout)

    def inspect(self, sha: str) -> subprocess.CompletedProcess[str]:
        """``skopeo inspect`` of ``hello:<sha>`` in the test registry (fails when absent)."""
        return subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{self.registry}/hello:{sha}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def digest(self, sha: str) -> str:
        """The digest the registry stored for ``hello:<sha>``."""
        inspected = self.inspect(sha)
        assert inspected.returncode == 0, inspected.stderr
        digest: str = json.loads(inspected.stdout)["Digest"]
        return digest

    def registry_tags(self) -> list[str]:
        """The tags of ``hello`` in the test registry (none when the repository is absent)."""
        listed = subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", f"docker://{self.registry}/hello"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if listed.returncode != 0:
            assert "404" in listed.stderr, listed.stderr
            return []
        tags: list[str] = json.loads(listed.stdout)["Tags"] or []
        return sorted(tags)

    def manifest_checkout(self) -> Path:
        target = self.tmp / f"checkout-{len(list(self.tmp.glob('checkout-*')))}"
        git("clone", "-q", str(self.manifests), str(target), cwd=self.tmp)
        return target


SESSION = re.compile(r"io\.conveyor\.session=([0-9a-f]+)")


def session_leftovers(run: Path) -> tuple[list[str], list[str]]:
    """The containers and networks of the run recorded in ``run`` that are still there.

    Found by the podman engine's session label, which the run's traced podman
    commands (``spans.jsonl``) name: whatever else runs on this machine.
    """
    sessions = set(SESSION.findall((run / "spans.jsonl").read_text()))
    assert len(sessions) == 1, f"the run's podman commands name sessions {sessions}"
    label = f"label=io.conveyor.session={sessions.pop()}"
    found = []
    for listing in (["ps", "-a"], ["network", "ls"]):
        done = subprocess.run(
            ["podman", *listing, "--filter", label, "--format", "{{.Names}}"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        found.append(done.stdout.split())
    return found[0], found[1]


def conveyor_executable() -> Path:
    """The ``conveyor`` console script of the virtualenv running the tests."""
    conveyor = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "conveyor"
    if not conveyor.exists():
        conveyor = Path(shutil.which("conveyor") or "conveyor")
    return conveyor


# the commit the example manifests pin as shipped
SHIPPED_PIN = "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"


def deployed_example(
    tmp_path: Path, registry: str, name: str, *, manifests: Path, overlays: str, pins: int = 1
) -> World:
    """``examples/<name>`` committed as deployed, its manifests a bare repository pinning it.

    The app's first commit is what the environments run: the manifest stage
    moves them only to newer commits, so every overlay (``overlays``, a glob in
    ``manifests``) has the example's ``pins`` placeholder pins replaced by it.
    """
    app = tmp_path / name
    shutil.copytree(EXAMPLES / name, app, ignore=shutil.ignore_patterns(".conveyor", "__pycache__"))
    git("init", "-q", "-b", "main", cwd=app)
    git("add", "-A", cwd=app)
    git("commit", "-q", "-m", "as deployed", cwd=app)
    deployed = git("rev-parse", "HEAD", cwd=app)
    source = tmp_path / "manifests-src"
    shutil.copytree(manifests, source)
    for overlay in source.glob(overlays):
        text = overlay.read_text()
        assert text.count(SHIPPED_PIN) == pins
        overlay.write_text(text.replace(SHIPPED_PIN, deployed))
    git("init", "-q", "-b", "main", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-q", "-m", "manifests", cwd=source)
    bare = tmp_path / "manifests.git"
    git("clone", "-q", "--bare", str(source), str(bare), cwd=tmp_path)
    return World(app, bare, registry, tmp_path / "trivy-calls.jsonl", tmp_path)


@pytest.fixture
def world(tmp_path: Path, registry: str, registry_base_image: str) -> World:
    """The example exactly as shipped: its images come from the loopback registry
    (``registry_base_image``), it publishes to the test's own ``registry``."""
    overlays = "apps/hello/overlays/*/kustomization.yaml"
    return deployed_example(
        tmp_path, registry, "hello", manifests=EXAMPLES / "manifests", overlays=overlays
    )


token_git_remote = serve_git_http  # the manifest repository behind a token, for the secret tests
