"""Bad input end to end: one clear message, the documented exit code, nothing delivered.

Every case runs the real ``conveyor run`` process on PodmanEngine against the
real registry and bare manifest repository of the :class:`World`; only the
Trivy process is a double (a replay of a recorded report, see
``tests/doubles/trivy``).  After each refused run the SHA tag is absent from
the registry (or, when something else pushed it first, unchanged), no
registry tag appeared or moved, and every ref of the manifest repository
points where it did before.  A re-run for an already published commit is not
bad input: it completes with the image in the registry, pushed once.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from e2e.conftest import EXAMPLES, World, git

pytestmark = pytest.mark.timeout(600)

CLEAN = "alpine-310.json"  # a recorded report with nothing at HIGH/CRITICAL
STAGING = "apps/hello/overlays/staging"


@dataclass(frozen=True)
class Snapshot:
    """What a run may change: the manifest repository's refs and the registry's tags."""

    manifest_refs: str
    registry_tags: tuple[str, ...]

    @classmethod
    def of(cls, world: World) -> Snapshot:
        return cls(world.manifest_refs(), tuple(world.registry_tags()))


def free_port() -> int:
    # Not imported from tests/conftest.py: run with other areas, "conftest" may
    # name another directory's conftest module.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def assert_nothing_delivered(world: World, sha: str, before: Snapshot) -> None:
    """The SHA tag was not pushed, no tag moved, the manifest repository is unchanged."""
    assert world.inspect(sha).returncode != 0, f"hello:{sha} was pushed"
    assert Snapshot.of(world) == before


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error")]


def edit_config(world: World, old: str, new: str) -> None:
    path = world.app / "conveyor.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# -- 1. the configuration file ------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "[stages.scan]\n",
            "[stages.scan\n",
            r"conveyor\.toml: is not valid TOML: .*\(at line \d+, column \d+\)",
            id="malformed-toml",
        ),
        pytest.param(
            "insecure = true",
            "insecure = true\ninsecure_tls = true",
            r"conveyor\.toml: registry\.insecure_tls: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "[stages.smoke]\nport = 8080",
            '[stages.smoke]\nport = "eighty"',
            r"conveyor\.toml: stages\.smoke\.port: .*integer.*\(got 'eighty'\)",
            id="wrong-type",
        ),
    ],
)
def test_bad_configuration_file_is_named_with_its_field(
    world: World, old: str, new: str, expected: str
) -> None:
    edit_config(world, old, new)
    sha = world.commit_app("bad configuration")
    before = Snapshot.of(world)

    done = world.run(CLEAN)

    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout == ""
    [line] = error_lines(done.stderr)
    assert line.startswith(f"error: {world.app / 'conveyor.toml'}: "), line
    assert re.search(expected, line), line
    assert_nothing_delivered(world, sha, before)


# -- 2. stage selection -------------------------------------------------------------


def test_a_base_that_is_not_in_the_checkout_says_every_stage_runs(world: World) -> None:
    world.commit_app("changed since a typo")

    done = world.run(CLEAN, "--changed-since", "nosuchref", "--only", "lint")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(
        "changes since nosuchref unknown (nosuchref is not in this checkout (a shallow "
        "clone?)): every stage runs\n"
    )
    assert "lint: success" in done.stdout


@pytest.mark.parametrize("option", ["--only", "--skip"])
def test_an_unknown_stage_names_it_and_the_known_ones(world: World, option: str) -> None:
    sha = world.commit_app(f"{option} an unknown stage")
    before = Snapshot.of(world)

    done = world.run(CLEAN, option, "nosuchstage")

    assert done.returncode == 3, done.stdout + done.stderr
    [line] = error_lines(done.stderr)
    assert line == "error: no stage named 'nosuchstage'"
    assert done.stdout == ""  # refused before an engine is chosen or a stage starts
    assert not (world.app / ".conveyor" / "runs").exists()  # and no run directory made
    assert (
        "hint: known stages: build, integration, lint, manifest, policy, publish, "
        "release-notes, report, scan, smoke, test" in done.stderr
    )
    assert_nothing_delivered(world, sha, before)


def test_skipping_smoke_skips_publish_and_what_follows(world: World) -> None:
    sha = world.commit_app("skip smoke")
    before = Snapshot.of(world)

    done = world.run(CLEAN, "--skip", "smoke")

    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("test", "build", "scan"):
        assert f"{stage}: success" in done.stdout
    assert "smoke: skipped (requested with --skip)" in done.stdout
    assert "publish: skipped (dependency 'smoke' was skipped)" in done.stdout
    assert "manifest: skipped (dependency 'publish' was skipped)" in done.stdout
    assert "published" not in done.stdout
    assert_nothing_delivered(world, sha, before)


# -- 3. mutable tags and registries -------------------------------------------------


def test_registry_outside_the_allowed_list_is_refused_before_any_stage(world: World) -> None:
    sha = world.commit_app("registry not allowed")
    before = Snapshot.of(world)

    done = world.run(
        CLEAN, env={"CONVEYOR_POLICY__ALLOWED_REGISTRIES": "['^myacr\\.azurecr\\.io/.+$']"}
    )

    assert done.returncode == 4, done.stdout + done.stderr
    assert "started" not in done.stdout
    [line] = error_lines(done.stderr)
    assert f"image '{world.registry}/hello:{sha}' refused: registry-not-allowed" in line
    assert (
        f"{world.registry}/hello matches none of the allowed registries (^myacr\\.azurecr\\.io/.+$)"
        in line
    )
    assert "hint: push the image to an allowed registry or extend policy.allowed_registries" in (
        done.stderr
    )
    assert_nothing_delivered(world, sha, before)


def test_source_sha_latest_is_not_a_commit(world: World) -> None:
    sha = world.commit_app("sha latest")
    before = Snapshot.of(world)

    done = world.run(CLEAN, env={"CONVEYOR_SOURCE_SHA": "latest"})

    assert done.returncode == 3, done.stdout + done.stderr
    [line] = error_lines(done.stderr)
    assert (
        line
        == "error: configuration: CONVEYOR_SOURCE_SHA: 'latest' is not a full 40-character git SHA"
    )
    assert "pass the full one" in done.stderr
    assert world.inspect("latest").returncode != 0
    assert_nothing_delivered(world, sha, before)


def test_latest_in_the_manifests_stops_the_manifest_commit(world: World) -> None:
    """The manifest stage checks the edited environment against the policy before it commits.

    A ``:latest`` image elsewhere in the environment fails the run (exit 4)
    and the pin is not committed; the image itself was already pushed (publish
    comes first), tagged with the SHA, so a fixed environment can pin it later.
    """
    base = "apps/hello/base/deployment.yaml"
    deployment = (EXAMPLES / "manifests" / base).read_text()
    sidecar = f"{world.registry}/sidecar:latest"
    edited = deployment.replace(
        "      containers:\n",
        f"      containers:\n        - name: sidecar\n          image: {sidecar}\n",
    )
    assert edited != deployment
    base_commit = world.push_manifests({base: edited}, "add a sidecar on latest")
    sha = world.commit_app("policy before the commit")
    tags_before = world.registry_tags()

    done = world.run(CLEAN)

    assert done.returncode == 4, done.stdout + done.stderr
    assert "manifest: failed" in done.stdout
    assert "policy: skipped (dependency 'manifest' failed)" in done.stdout
    [line] = error_lines(done.stderr)
    assert f"error in stage manifest: image '{sidecar}' refused: mutable-tag: tag 'latest'" in line
    assert STAGING in line
    assert "hint: tag images with the full git SHA of their source and pin the digest" in (
        done.stderr
    )
    # the image is pushed; main is exactly as it was
    assert world.registry_tags() == sorted([*tags_before, sha])
    checkout = world.manifest_checkout()
    assert git("rev-parse", "HEAD", cwd=checkout) == base_commit


# -- 4. the build ---------------------------------------------------------------------


def test_failing_dockerfile_shows_command_exit_code_and_log_tail(world: World) -> None:
    dockerfile = world.app / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(
            "COPY app.py .", "COPY app.py .\nRUN echo 'compiling assets failed' >&2 && exit 42"
        )
    )
    sha = world.commit_app("broken Dockerfile")
    before = Snapshot.of(world)

    done = world.run(CLEAN)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "build: failed" in done.stdout
    assert "scan: skipped (dependency 'build' failed)" in done.stdout
    assert "publish: skipped (dependency 'build' failed)" in done.stdout
    [line] = error_lines(done.stderr)
    assert "error in stage build: command failed with exit code" in line
    assert "podman build" in line
    assert "compiling assets failed" in done.stderr
    assert "exit status 42" in done.stderr
    assert "hint: fix Dockerfile or the build context" in done.stderr
    assert_nothing_delivered(world, sha, before)


# -- 5. missing tools ---------------------------------------------------------------


def path_without(tmp: Path, missing: str) -> str:
    """A PATH with the tools a run needs, symlinked, except ``missing``."""
    tools = ("git", "kubectl", "skopeo", "podman", "python3", "sh", "env")
    bin_dir = tmp / f"bin-without-{missing}"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        if tool != missing and found is not None:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_missing_podman_names_it_and_how_to_install_it(world: World) -> None:
    sha = world.commit_app("no podman")
    before = Snapshot.of(world)

    done = world.run(CLEAN, env={"PATH": path_without(world.tmp, "podman")})

    assert done.returncode == 6, done.stdout + done.stderr
    # checked once before any stage starts, not once per stage
    assert "test: started" not in done.stdout
    [line] = error_lines(done.stdout + done.stderr)
    assert line == "error: 'podman' is not installed or not on PATH"
    assert (
        "hint: install podman ('apt-get install podman', or run scripts/setup.sh), "
        "or use another engine: --engine dagger (needs the Dagger CLI)" in done.stderr
    )
    assert_nothing_delivered(world, sha, before)


def test_dagger_engine_without_its_cli_names_what_is_missing(world: World) -> None:
    sha = world.commit_app("no dagger")
    before = Snapshot.of(world)

    done = world.run(CLEAN, engine="dagger", env={"PATH": path_without(world.tmp, "dagger")})

    assert done.returncode == 6, done.stdout + done.stderr
    [line] = error_lines(done.stderr)
    assert "engine 'dagger' cannot run here: no 'dagger' CLI on PATH" in line
    assert "--engine podman" in done.stderr
    assert_nothing_delivered(world, sha, before)


# -- 6. unreachable registry and git remote -------------------------------------------


def test_unreachable_registry_stops_publish_and_commits_nothing(world: World) -> None:
    sha = world.commit_app("registry down")
    before = Snapshot.of(world)
    closed = f"127.0.0.1:{free_port()}"

    done = world.run(CLEAN, env={"CONVEYOR_REGISTRY__HOST": closed})

    assert done.returncode == 7, done.stdout + done.stderr
    assert "publish: failed" in done.stdout
    assert "manifest: skipped (dependency 'publish' failed)" in done.stdout
    [line] = error_lines(done.stderr)
    assert f"error in stage publish: registry {closed} is unreachable:" in line
    assert "connection refused" in line
    assert "hint: check that the registry runs and the address is right" in done.stderr
    assert_nothing_delivered(world, sha, before)


def test_missing_manifest_repository_after_publish_commits_nothing(world: World) -> None:
    sha = world.commit_app("manifest repository missing")
    before = Snapshot.of(world)
    missing = world.tmp / "no-such-manifests.git"

    done = world.run(CLEAN, env={"CONVEYOR_GITOPS__REPO": str(missing)})

    assert done.returncode == 7, done.stdout + done.stderr
    assert "manifest: failed" in done.stdout
    assert "policy: skipped (dependency 'manifest' failed)" in done.stdout
    [line] = error_lines(done.stderr)
    assert f"error in stage manifest: git remote {missing} is unreachable:" in line
    assert f"fatal: repository '{missing}' does not exist" in line
    assert "hint: check the URL in gitops.repo" in done.stderr
    # publish precedes the manifest update: the image is in the registry, nothing else moved
    assert world.inspect(sha).returncode == 0
    assert world.manifest_refs() == before.manifest_refs
    assert world.registry_tags() == sorted([*before.registry_tags, sha])


def test_rerun_after_a_git_outage_delivers_the_published_image(world: World) -> None:
    """A git remote that is down after publish leaves the commit pushed but not deployed.

    Re-running the pipeline on that commit finishes the job: publish finds
    this commit's image under the tag, does not push it again, and the
    manifest stage pins the digest the registry already holds.
    """
    sha = world.commit_app("git remote down")
    before = Snapshot.of(world)
    url = f"http://127.0.0.1:{free_port()}/manifests.git"

    down = world.run(CLEAN, env={"CONVEYOR_GITOPS__REPO": url})

    assert down.returncode == 7, down.stdout + down.stderr
    [line] = error_lines(down.stderr)
    assert f"error in stage manifest: git remote {url} is unreachable:" in line
    assert "Failed to connect to 127.0.0.1" in line
    digest = world.digest(sha)
    assert world.manifest_refs() == before.manifest_refs

    rerun = world.run(CLEAN)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert (
        f"published {world.registry}/hello:{sha}@{digest} "
        "(already in the registry, not pushed again)" in rerun.stdout
    )
    assert last_summary(world)["outputs"]["publish"]["reused"] == "true"
    assert world.digest(sha) == digest
    assert world.registry_tags() == sorted([*before.registry_tags, sha])
    assert staging_pin(world) == (sha, digest)


# -- 7. a tag that already exists ---------------------------------------------------------


def test_second_run_on_the_same_commit_reuses_the_tag_and_never_overwrites_it(
    world: World,
) -> None:
    sha = world.commit_app("published twice")
    first = world.run(CLEAN)
    assert first.returncode == 0, first.stdout + first.stderr
    assert last_summary(world)["outputs"]["publish"]["reused"] == "false"
    first_image = last_summary(world)["outputs"]["build"]["image.id"]
    digest = world.digest(sha)
    assert staging_pin(world) == (sha, digest)
    before = Snapshot.of(world)

    # a different image for the same SHA (another creation time, as a build that is
    # not reproducible gives): the rebuild must not replace the pushed one
    done = world.run(CLEAN, env={"SOURCE_DATE_EPOCH": "1700000000"})

    assert done.returncode == 0, done.stdout + done.stderr
    assert last_summary(world)["outputs"]["build"]["image.id"] != first_image
    assert "publish: success" in done.stdout
    assert f"published {world.registry}/hello:{sha}@{digest}" in done.stdout
    outputs = last_summary(world)["outputs"]["publish"]
    assert outputs["reused"] == "true"
    assert outputs["note"] == "already in the registry, not pushed again"
    assert world.digest(sha) == digest
    # the manifest already pins that digest: nothing to commit, no ref moved
    assert Snapshot.of(world) == before
    assert staging_pin(world) == (sha, digest)


def test_a_tag_pushed_by_something_else_is_never_overwritten(world: World) -> None:
    sha = world.commit_app("tag taken by another pipeline")
    foreign = push_foreign_image(world, sha)
    before = Snapshot.of(world)

    done = world.run(CLEAN)

    assert done.returncode == 4, done.stdout + done.stderr
    assert "publish: failed" in done.stdout
    assert "manifest: skipped (dependency 'publish' failed)" in done.stdout
    [line] = error_lines(done.stderr)
    assert (
        f"image '{world.registry}/hello:{sha}' refused: the tag already exists in the "
        "registry and pushed tags are never overwritten "
        f"(its image {foreign} has no org.opencontainers.image.revision)" in line
    )
    assert world.digest(sha) == foreign
    assert Snapshot.of(world) == before


def last_summary(world: World) -> dict[str, Any]:
    """The summary.json of the app's latest run."""
    runs = sorted((world.app / ".conveyor" / "runs").iterdir())
    data: dict[str, Any] = json.loads((runs[-1] / "artifacts" / "summary.json").read_text())
    return data


def staging_pin(world: World) -> tuple[str, str]:
    """The tag and digest the staging kustomization on the manifests' main pins."""
    checkout = world.manifest_checkout()
    data = YAML(typ="safe").load((checkout / STAGING / "kustomization.yaml").read_text())
    [image] = [i for i in data["images"] if i["newName"] == f"{world.registry}/hello"]
    return image["newTag"], image["digest"]


def push_foreign_image(world: World, sha: str) -> str:
    """Push an image without Conveyor's labels to ``hello:<sha>`` with podman; its digest."""
    context = world.tmp / "foreign"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    local = f"localhost/conveyor-test/foreign:{sha[:12]}"
    try:
        subprocess.run(
            ["podman", "build", "-q", "-t", local, str(context)], check=True, capture_output=True
        )
        subprocess.run(
            ["podman", "push", "-q", "--tls-verify=false", "--digestfile",
             str(context / "digest"), local, f"docker://{world.registry}/hello:{sha}"],
            check=True,
            capture_output=True,
        )  # fmt: skip
    finally:
        subprocess.run(["podman", "rmi", "-f", local], check=False, capture_output=True)
    return (context / "digest").read_text().strip()
