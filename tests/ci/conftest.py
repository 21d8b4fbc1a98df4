from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

GitRepo = Callable[..., Path]


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    """A factory of real git repositories with the given files, committed on ``main``."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_DIR", "GIT_WORK_TREE"):
        monkeypatch.delenv(key, raising=False)
    identity = {
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }

    def make(name: str, files: dict[str, str], origin: str | None = None) -> Path:
        repo = tmp_path / name
        repo.mkdir()
        for relative, text in files.items():
            (repo / relative).parent.mkdir(parents=True, exist_ok=True)
            (repo / relative).write_text(text)
        env = {**os.environ, **identity}
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "app"]):
            subprocess.run(["git", *args], cwd=repo, env=env, check=True, timeout=30)
        if origin:
            subprocess.run(
                ["git", "remote", "add", "origin", origin], cwd=repo, check=True, timeout=30
            )
        return repo.resolve()

    return make


#: An application whose pipeline really runs and fails at once, the same way
#: on every machine: no test stage is configured and the build runs a command
#: that does not exist in a ``scratch`` image (no pull, no network).  The run
#: still writes its artifacts (summary.json) and trace (spans.jsonl), which is
#: what the CI wrappers collect.
FAILING_BUILD_APP = {
    "Dockerfile": 'FROM scratch\nRUN ["/conveyor-ci-test-absent"]\n',
    "conveyor.toml": """\
[app]
name = "ci-wrapper-test"

[registry]
host = "myacr.azurecr.io"
repository = "ci-wrapper-test"

[gitops]
repo = "https://github.com/acme/manifests.git"
branch = "main"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"
promotion = "commit"

[policy]
allowed_registries = ['^myacr\\.azurecr\\.io/.+$']
""",
}

#: Two images whose builds fail at once, the same way everywhere (no pull, no
#: network): a run of one of them shows what it delivers and what it leaves.
FAILING_IMAGES_APP = {
    "api/Dockerfile": 'FROM scratch\nRUN ["/conveyor-ci-test-absent"]\n',
    "web/Dockerfile": 'FROM scratch\nRUN ["/conveyor-ci-test-absent"]\n',
    "conveyor.toml": """\
[app]
name = "shop"

[registry]
host = "myacr.azurecr.io"
repository = "shop"

[images.api]
context = "api"
paths = ["api"]

[images.web]
context = "web"
paths = ["web"]

[gitops]
repo = "https://github.com/acme/manifests.git"
branch = "main"

[gitops.environments.staging]
path = "apps/shop/overlays/staging"
promotion = "commit"

[policy]
allowed_registries = ['^myacr\\.azurecr\\.io/.+$']
""",
}
