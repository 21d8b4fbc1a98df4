"""Every write path goes through the one guarded writer: refused results push nothing.

The four paths - the manifest stage, ``conveyor manifest update``, ``conveyor
rollback`` and ``conveyor promote`` (a pull request) - against a real bare
manifest repository, the host's real kustomize and the GitHub API double.
For each: a policy violation in the rendered result and a result kustomize
cannot build are refused with the exit code of the table, and every ref of
the bare repository is what it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from forge.forge_doubles import TOKEN, GitHubApiDouble
from promotion_repo import DIGEST_B, SHA_B, STAGING, Remote, git, make_remote
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ConveyorError
from conveyor.stages.context import DeliveryContext
from conveyor.stages.manifest import run_manifest

pytestmark = pytest.mark.timeout(120)

SHA_C = "c" * 40
DIGEST_C = "sha256:" + "4" * 64
REF_C = f"myacr.azurecr.io/hello:{SHA_C}@{DIGEST_C}"
ALLOW_MYACR = r"^myacr\.azurecr\.io/.+$"
SIDECAR = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - name: sidecar
          image: busybox:latest
"""


@pytest.fixture
def remote(manifests: Path, tmp_path: Path) -> Remote:
    made = make_remote(manifests, tmp_path)
    made.set_staging(SHA_B, DIGEST_B)  # staging has an earlier image to roll back to
    return made


@pytest.fixture
def github() -> Iterator[GitHubApiDouble]:
    with GitHubApiDouble("acme", "manifests", TOKEN) as double:
        yield double


def write_config(remote: Remote, forge_url: str, directory: Path, allowed: str) -> Path:
    path = directory / "conveyor.toml"
    path.write_text(
        f"""
[app]
name = "hello"

[registry]
host = "myacr.azurecr.io"
repository = "hello"

[stages.manifest]
# the seed pins a commit no source repository has (the order: test_manifest_order.py)
allow_unordered = true

[gitops]
repo = "{remote.bare}"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"

[gitops.environments.production]
path = "apps/hello/overlays/production"

[gitops.forge]
kind = "github"
project = "acme/manifests"
api_url = "{forge_url}"
token_env = "FORGE_TOKEN"

[policy]
allowed_registries = ['{allowed}']
"""
    )
    return path


def refs(remote: Remote) -> str:
    return git("--git-dir", str(remote.bare), "for-each-ref", "--format=%(refname) %(objectname)")


def cli(*args: str) -> Callable[[Path], tuple[int, str]]:
    def run(config: Path) -> tuple[int, str]:
        result = CliRunner().invoke(app, [*args, "-c", str(config)], env={"FORGE_TOKEN": TOKEN})
        return result.exit_code, result.stderr

    return run


def stage(config: Path) -> tuple[int, str]:
    ctx = DeliveryContext(load_config(config, env={}), NoEngine(), SHA_C, config.parent / "out")
    try:
        anyio.run(run_manifest, ctx, {"publish": {"image.ref": REF_C}})
    except ConveyorError as error:
        return int(exit_code_for(error)), f"error: {error}\n"
    return 0, ""


PATHS = {
    "stage": stage,
    "update": cli("manifest", "update", "staging", REF_C),
    "rollback": cli("rollback", "staging", "--steps", "1"),
    "promote": cli("promote", "--from", "staging", "--to", "production"),
}


def push_to_main(remote: Remote, files: dict[str, str], message: str) -> None:
    git("pull", "--quiet", "origin", "main", cwd=remote.work)
    for relative, text in files.items():
        (remote.work / relative).write_text(text)
    git("add", "-A", cwd=remote.work)
    git("commit", "--quiet", "-m", message, cwd=remote.work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=remote.work)


@pytest.mark.parametrize("path", PATHS)
def test_a_registry_the_policy_no_longer_allows_is_refused_and_nothing_pushed(
    path: str, remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    config = write_config(remote, github.url, tmp_path, r"^other\.example/.+$")
    before = refs(remote)

    code, err = PATHS[path](config)

    assert code == ExitCode.POLICY, err
    assert "myacr.azurecr.io/hello" in err
    assert "registry-not-allowed" in err or "matches none of" in err
    assert refs(remote) == before
    assert [r.method for r in github.requests if r.method != "GET"] == []


@pytest.mark.parametrize("path", PATHS)
def test_a_mutable_image_in_the_rendered_result_is_refused_and_nothing_pushed(
    path: str, remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    # the new image is fine; a sidecar the base now adds is not
    base = "apps/hello/base"
    kustomization = (remote.work / base / "kustomization.yaml").read_text()
    push_to_main(
        remote,
        {
            f"{base}/sidecar.yaml": SIDECAR,
            f"{base}/kustomization.yaml": kustomization + "patches:\n  - path: sidecar.yaml\n",
        },
        "a sidecar on latest",
    )
    config = write_config(remote, github.url, tmp_path, ALLOW_MYACR)
    before = refs(remote)

    code, err = PATHS[path](config)

    assert code == ExitCode.POLICY, err
    assert "busybox:latest" in err
    assert refs(remote) == before
    assert [r.method for r in github.requests if r.method != "GET"] == []


@pytest.mark.parametrize("path", PATHS)
def test_a_result_kustomize_cannot_build_is_refused_and_nothing_pushed(
    path: str, remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    broken = {}
    for overlay in ("staging", "production"):
        relative = f"apps/hello/overlays/{overlay}/kustomization.yaml"
        lines = (remote.work / relative).read_text().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if "../../base" in line)
        item = lines[at].split("../../base")[0] + "missing.yaml\n"
        broken[relative] = "".join([*lines[: at + 1], item, *lines[at + 1 :]])
    push_to_main(remote, broken, "a resource that does not exist")
    config = write_config(remote, github.url, tmp_path, ALLOW_MYACR)
    before = refs(remote)

    code, err = PATHS[path](config)

    assert code == ExitCode.GITOPS, err
    assert "after the edit, kustomize cannot build environment" in err
    assert "missing.yaml" in err
    assert "nothing was pushed" in err
    assert refs(remote) == before
    assert [r.method for r in github.requests if r.method != "GET"] == []


def test_rollback_to_an_image_without_a_digest_is_refused_under_require_digest(
    remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    # staging once ran a tag without a digest (set by hand), then SHA_B@DIGEST_B
    text = (remote.work / STAGING).read_text()
    no_digest = "\n".join(line for line in text.splitlines() if "digest:" not in line) + "\n"
    push_to_main(remote, {STAGING: no_digest.replace(SHA_B, "1.0.0")}, "by hand")
    push_to_main(remote, {STAGING: text}, "back to a pinned digest")
    config = write_config(remote, github.url, tmp_path, ALLOW_MYACR)
    before = refs(remote)

    code, err = cli("rollback", "staging", "--steps", "1")(config)

    assert code == ExitCode.POLICY, err
    assert "myacr.azurecr.io/hello:1.0.0" in err
    assert "digest" in err
    assert refs(remote) == before


def test_the_writes_that_pass_the_checks_land(
    remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    config = write_config(remote, github.url, tmp_path, ALLOW_MYACR)
    start = remote.sha()

    assert cli("rollback", "staging", "--steps", "1")(config) == (0, "")
    assert cli("manifest", "update", "staging", REF_C)(config) == (0, "")
    assert cli("promote", "--from", "staging", "--to", "production")(config) == (0, "")

    assert git("--git-dir", str(remote.bare), "rev-list", "--count", f"{start}..main") == "2"
    image = remote.image(
        "conveyor/promote-production-hello", "apps/hello/overlays/production/kustomization.yaml"
    )
    assert image is not None
    assert (image.new_tag, image.digest) == (SHA_C, DIGEST_C)
