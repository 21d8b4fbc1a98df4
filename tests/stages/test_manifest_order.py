"""The manifest stage never moves an environment to an older source commit.

Real git throughout: a source repository (an ``origin`` bare repository and
checkouts of it, full and shallow as CI makes them) whose commits tag the
images, a bare manifest repository seeded with tests/resources/manifests
pinning the source's first commit, and the host's real kustomize.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import GitOpsError
from conveyor.pipeline.graph import Outputs
from conveyor.stages.context import DeliveryContext
from conveyor.stages.manifest import run_manifest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "manifests"
STAGING = "apps/hello/overlays/staging/kustomization.yaml"
SEED_PIN = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
IDENTITY = ["-c", "user.name=T", "-c", "user.email=t@example.invalid"]


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def digest(sha: str) -> str:
    return "sha256:" + (sha * 2)[:64]


@dataclass
class World:
    """A source repository with commits ``deployed`` < A < B < C and a manifest repository."""

    tmp: Path
    origin: Path
    checkout: Path
    manifests: Path
    deployed: str
    commits: dict[str, str]

    def context(self, sha: str, source: Path | None = None, **extra: str) -> DeliveryContext:
        app = self.tmp / f"app-{len(list(self.tmp.glob('app-*')))}"
        app.mkdir()
        (app / "conveyor.toml").write_text(
            f'[app]\nname = "hello"\nsource = "{source or self.checkout}"\n\n'
            '[registry]\nhost = "myacr.azurecr.io"\nrepository = "hello"\n\n'
            f'[gitops]\nrepo = "{self.manifests}"\n\n'
            '[gitops.environments.staging]\npath = "apps/hello/overlays/staging"\n',
            encoding="utf-8",
        )
        env = {f"CONVEYOR_STAGES__MANIFEST__{k.upper()}": v for k, v in extra.items()}
        return DeliveryContext(load_config(app / "conveyor.toml", env=env), NoEngine(), sha, app)

    async def run(self, name: str, source: Path | None = None, **extra: str) -> Outputs:
        sha = self.commits[name]
        ref = f"myacr.azurecr.io/hello:{sha}@{digest(sha)}"
        return await run_manifest(
            self.context(sha, source, **extra), {"publish": {"image.ref": ref}}
        )

    def pinned(self, rev: str = "main") -> str:
        text = git("--git-dir", str(self.manifests), "show", f"{rev}:{STAGING}")
        tag = next(line for line in text.splitlines() if "newTag:" in line)
        return tag.split(":", 1)[1].strip().strip('"')

    def pins_on_main(self) -> list[str]:
        """The tag staging pinned at each commit of main, oldest first."""
        log = git("--git-dir", str(self.manifests), "rev-list", "--reverse", "main")
        return [self.pinned(commit) for commit in log.splitlines()]

    def main(self) -> str:
        return git("--git-dir", str(self.manifests), "rev-parse", "main")

    def shallow(self, name: str) -> Path:
        """A one-commit-deep checkout of ``name``, as CI makes it (origin: the source)."""
        target = self.tmp / f"shallow-{name}"
        target.mkdir()
        git("init", "-q", cwd=target)
        git("remote", "add", "origin", f"file://{self.origin}", cwd=target)
        git("fetch", "-q", "--depth", "1", "origin", self.commits[name], cwd=target)
        git("checkout", "-q", "--detach", "FETCH_HEAD", cwd=target)
        return target


@pytest.fixture
def world(tmp_path: Path) -> World:
    checkout = tmp_path / "source"
    checkout.mkdir()
    git("init", "-q", "-b", "main", cwd=checkout)
    commits: dict[str, str] = {}
    for name in ("deployed", "A", "B", "C"):
        (checkout / "CHANGES").write_text(f"{name}\n")
        git("add", "-A", cwd=checkout)
        git(*IDENTITY, "commit", "-qm", name, cwd=checkout)
        commits[name] = git("rev-parse", "HEAD", cwd=checkout)
    origin = tmp_path / "source.git"
    git("clone", "-q", "--bare", str(checkout), str(origin))
    git("remote", "add", "origin", str(origin), cwd=checkout)
    seed = tmp_path / "seed"
    shutil.copytree(RESOURCES, seed)
    staging = seed / STAGING
    staging.write_text(staging.read_text().replace(SEED_PIN, commits["deployed"]))
    git("init", "-q", "-b", "main", cwd=seed)
    git("add", "-A", cwd=seed)
    git(*IDENTITY, "commit", "-qm", "seed", cwd=seed)
    manifests = tmp_path / "manifests.git"
    git("clone", "-q", "--bare", str(seed), str(manifests))
    return World(tmp_path, origin, checkout, manifests, commits["deployed"], commits)


@pytest.mark.parametrize("order", ["ABC", "CBA", "BCA"])
async def test_three_consecutive_commits_racing_end_on_the_newest(world: World, order: str) -> None:
    outputs: dict[str, Outputs] = {}

    async def run(name: str, delay: float) -> None:
        await anyio.sleep(delay)
        outputs[name] = await world.run(name)

    async with anyio.create_task_group() as group:
        for position, name in enumerate(order):
            group.start_soon(run, name, position * 0.05)

    commits = world.commits
    assert world.pinned() == commits["C"]
    # main never went back: every pin it held is newer than the one before
    rank = {commits[n]: i for i, n in enumerate(("deployed", "A", "B", "C"))}
    ranks = [rank[pin] for pin in world.pins_on_main()]
    assert ranks == sorted(set(ranks)), ranks
    assert outputs["C"]["changed"] == "true"
    for name, out in outputs.items():
        # each run either pinned its commit or found a newer one pinned, and succeeded
        assert (out["changed"] == "true") != out["superseded"].startswith(
            "newer already pinned: myacr.azurecr.io/hello:"
        ), (name, out)


async def test_an_old_commit_re_run_leaves_the_newer_pin(world: World) -> None:
    await world.run("C")
    before = world.main()

    again = await world.run("A")

    assert again["changed"] == "false"
    assert again["commit"] == ""
    assert again["superseded"] == (
        f"newer already pinned: myacr.azurecr.io/hello:{world.commits['C']}"
        f"@{digest(world.commits['C'])}"
    )
    assert again["note"] == again["superseded"]  # what the run's table shows
    assert world.main() == before
    assert world.pinned() == world.commits["C"]


async def test_a_shallow_checkout_deepens_to_find_the_older_pin(world: World) -> None:
    shallow = world.shallow("C")  # holds C alone; the pinned 'deployed' is three commits down
    assert git("rev-list", "--count", "HEAD", cwd=shallow) == "1"

    out = await world.run("C", source=shallow)

    assert out["changed"] == "true"
    assert world.pinned() == world.commits["C"]


async def test_a_shallow_checkout_of_an_old_commit_fetches_the_newer_pin(world: World) -> None:
    await world.run("C")
    shallow = world.shallow("A")  # C is on origin, not in this checkout
    with pytest.raises(subprocess.CalledProcessError):
        git("cat-file", "-e", f"{world.commits['C']}^{{commit}}", cwd=shallow)
    before = world.main()

    out = await world.run("A", source=shallow)

    assert out["superseded"].startswith("newer already pinned: ")
    assert world.main() == before


async def test_a_pin_the_source_does_not_know_is_refused_unless_allowed(world: World) -> None:
    unknown = "e" * 40
    checkout = world.tmp / "manifests-work"
    git("clone", "-q", str(world.manifests), str(checkout))
    file = checkout / STAGING
    file.write_text(file.read_text().replace(world.deployed, unknown))
    git(*IDENTITY, "commit", "-qam", "a pin from elsewhere", cwd=checkout)
    git("push", "-q", "origin", "HEAD:main", cwd=checkout)
    before = world.main()

    with pytest.raises(GitOpsError) as caught:
        await world.run("B")

    assert str(caught.value) == (
        f"cannot tell whether {world.commits['B'][:12]} is newer than {unknown[:12]}, which the "
        f"environment pins: commit {unknown[:12]} is not in the source repository at "
        f"{world.checkout}, not even after fetching it from origin; nothing was pushed\n"
        "  hint: fetch the source's full history (e.g. fetch-depth: 0), or set "
        "stages.manifest.allow_unordered = true to commit without knowing; "
        "'conveyor rollback' is the way back to an older image"
    )
    assert world.main() == before

    out = await world.run("B", allow_unordered="true")

    assert out["changed"] == "true"
    assert out["ordering"].startswith(f"order not decided (commit {unknown[:12]} is not in")
    assert world.pinned() == world.commits["B"]


async def test_a_pin_on_a_diverged_history_is_refused(world: World) -> None:
    # a commit on another branch, off 'deployed': neither it nor C descends from the other
    git("checkout", "-q", "-b", "hotfix", world.deployed, cwd=world.checkout)
    (world.checkout / "HOTFIX").write_text("x\n")
    git("add", "-A", cwd=world.checkout)
    git(*IDENTITY, "commit", "-qm", "hotfix", cwd=world.checkout)
    world.commits["hotfix"] = git("rev-parse", "HEAD", cwd=world.checkout)
    await world.run("hotfix")
    before = world.main()

    with pytest.raises(GitOpsError) as caught:
        await world.run("C")

    assert (
        f"neither of {world.commits['C'][:12]} and {world.commits['hotfix'][:12]} descends "
        "from the other (the histories diverged)"
    ) in str(caught.value)
    assert world.main() == before
