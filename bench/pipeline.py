"""Time the example pipeline under ``conveyor run`` against a sequential shell script.

The world is the one ``scripts/demo.sh`` and ``tests/e2e`` use: a git checkout
of ``examples/hello``, a local bare manifest repository made from
``examples/manifests``, the loopback registry on 127.0.0.1:5000 and, where no
``trivy`` is installed, the Trivy replay double ``tests/doubles/trivy``.

Each round makes a fresh commit and runs both, interleaved (the order flips
every round so that neither always runs on a warmer machine):

* ``conveyor run --engine podman`` (test ∥ build, then scan ∥ smoke, publish,
  manifest, policy), its stage times read from the run's ``summary.json``;
* ``bench/pipeline_baseline.sh``: the same steps with the same tools, one after
  the other, each step timed;
* ``conveyor run --capacity 1``: Conveyor one stage at a time, so that each
  stage's time can be set against its raw tool calls without the other
  stages competing for the two cores.

Then the warm-run figure: in an empty image store of its own
(``CONTAINERS_STORAGE_CONF``; nothing cached, base image pulled from the
registry) a cold run, then a commit that changes only ``app.py`` (warm).

The source tree is byte-compiled first (``compileall``), as in
``bench/startup.py``: an installed Conveyor has its ``.pyc`` files, and with
``PYTHONDONTWRITEBYTECODE`` set (as on this project's machines) every run
would otherwise compile its modules before the first stage starts.

Prints the medians and ratios: the whole run (target <= 0.7x the script),
each stage against the script's step for it (target <= 1.2x + 100 ms), and
warm against cold (target <= 0.5x).  Figures only: nothing here asserts.

Run: ``.venv/bin/python bench/pipeline.py [--rounds N] [--no-warm]``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "bench" / "pipeline_baseline.sh"
TRIVY_DOUBLE = ROOT / "tests" / "doubles" / "trivy"
TRIVY_REPORT = ROOT / "tests" / "scan" / "resources" / "trivy" / "alpine-310.json"
TOOLS = Path(os.environ.get("CONVEYOR_CACHE_DIR", "/var/cache/conveyor")) / "bin"
"""Where scripts/setup.sh puts kustomize v5 (which the manifest stage renders with)."""
REGISTRY_IMAGE = "127.0.0.1:5000/hello"
PLACEHOLDER = "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"
STEPS = ("test", "lint", "build", "integration", "scan", "smoke", "publish", "manifest")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def conveyor() -> Path:
    found = ROOT / ".venv" / "bin" / "conveyor"
    return found if found.exists() else Path(shutil.which("conveyor") or "conveyor")


@dataclass
class World:
    """The app checkout and the bare manifest repository, under one temp dir."""

    root: Path
    app: Path
    manifests: Path

    @classmethod
    def create(cls, root: Path) -> World:
        app = root / "hello"
        shutil.copytree(
            ROOT / "examples" / "hello",
            app,
            ignore=shutil.ignore_patterns(".conveyor", "__pycache__", ".pytest_cache"),
        )
        git("init", "-q", "-b", "main", cwd=app)
        git("add", "-A", cwd=app)
        git("commit", "-q", "-m", "hello", cwd=app)
        first = git("rev-parse", "HEAD", cwd=app)
        source = root / "manifests-src"
        shutil.copytree(ROOT / "examples" / "manifests", source)
        # The example pins a placeholder commit; pin the source's first commit
        # instead (as scripts/demo.sh does), so the manifest stage can tell
        # that each new one is newer.
        for overlay in source.glob("apps/hello/overlays/*/kustomization.yaml"):
            overlay.write_text(overlay.read_text().replace(PLACEHOLDER, first))
        git("init", "-q", "-b", "main", cwd=source)
        git("add", "-A", cwd=source)
        git("commit", "-q", "-m", "manifests", cwd=source)
        bare = root / "manifests.git"
        git("clone", "-q", "--bare", str(source), str(bare), cwd=root)
        return cls(root, app, bare)

    def commit(self, *, app_only: bool = False) -> str:
        """A fresh commit: a nonce file, or (``app_only``) a comment appended to app.py."""
        nonce = uuid.uuid4().hex
        if app_only:
            with (self.app / "app.py").open("a") as handle:
                handle.write(f"# change {nonce}\n")
        else:
            (self.app / "CHANGES").write_text(f"{nonce}\n")
        git("add", "-A", cwd=self.app)
        git("commit", "-q", "-m", f"bench {nonce[:8]}", cwd=self.app)
        return git("rev-parse", "HEAD", cwd=self.app)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {**os.environ, "CI": "true", "CONVEYOR_GITOPS__REPO": str(self.manifests)}
        if (TOOLS / "kustomize").is_file():  # as scripts/demo.sh: what setup built
            env["PATH"] = f"{TOOLS}{os.pathsep}{env.get('PATH', '')}"
        if shutil.which("trivy") is None:
            env |= {
                "CONVEYOR_STAGES__SCAN__TRIVY": str(TRIVY_DOUBLE),
                "TRIVY_DOUBLE_REPORT": str(TRIVY_REPORT),
            }
        return env | dict(extra or {})

    def trivy(self) -> str:
        return shutil.which("trivy") or str(TRIVY_DOUBLE)


@dataclass
class Timing:
    total: float
    stages: dict[str, float]


def run_conveyor(
    world: World, extra_env: Mapping[str, str] | None = None, *, sequential: bool = False
) -> Timing:
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(conveyor()),
            "run",
            "--engine",
            "podman",
            "--output",
            "plain",
            *(["--capacity", "1"] if sequential else []),
        ],
        cwd=world.app,
        env=world.env(extra_env),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    total = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"conveyor run failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    runs = sorted((world.app / ".conveyor" / "runs").iterdir())
    summary = json.loads((runs[-1] / "artifacts" / "summary.json").read_text())
    return Timing(total, {row["name"]: float(row["duration"]) for row in summary["stages"]})


def run_baseline(world: World) -> Timing:
    started = time.perf_counter()
    done = subprocess.run(
        [str(BASELINE), str(world.app), str(world.manifests), REGISTRY_IMAGE, world.trivy()],
        env=world.env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    total = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"baseline failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    steps = dict(line.split() for line in done.stdout.splitlines() if line.strip())
    return Timing(total, {name: float(value) for name, value in steps.items()})


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def separate_store(root: Path) -> dict[str, str]:
    """The environment of an empty image store of its own (graphroot and runroot under root)."""
    conf = root / "storage.conf"
    conf.write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{root / "graph"}"\n'
        f'runroot = "{root / "run"}"\n'
    )
    return {"CONTAINERS_STORAGE_CONF": str(conf)}


def remove_store(root: Path) -> None:
    graph = root / "graph"
    mounted = [line for line in Path("/proc/mounts").read_text().splitlines() if str(graph) in line]
    if mounted:
        print(f"note: {len(mounted)} mounts left under {graph}; leaving the store there")
        return
    shutil.rmtree(root, ignore_errors=True)


def remove_images(shas: list[str]) -> None:
    names = [
        f"{repository}:{sha}"
        for sha in shas
        for repository in ("localhost/conveyor/hello", "localhost/bench-baseline/hello")
    ]
    subprocess.run(["podman", "rmi", "-f", *names], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-warm", action="store_true", help="skip the warm/cold figure")
    args = parser.parse_args()

    ours: list[Timing] = []
    theirs: list[Timing] = []
    one_by_one: list[Timing] = []
    shas: list[str] = []
    compileall.compile_dir(ROOT / "src", quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        world = World.create(Path(tmp))
        shas.append(world.commit())
        run_conveyor(world)  # warm-up, untimed: first use of this checkout and the example
        contenders = {
            "conveyor": (ours, lambda: run_conveyor(world)),
            "baseline": (theirs, lambda: run_baseline(world)),
            "capacity-1": (one_by_one, lambda: run_conveyor(world, sequential=True)),
        }
        names = list(contenders)
        for number in range(args.rounds):
            order = names[number % 3 :] + names[: number % 3]  # each goes first once in 3
            for who in order:
                shas.append(world.commit())
                results, run = contenders[who]
                timing = run()
                results.append(timing)
                print(f"round {number + 1} {who:10s} {timing.total:6.2f} s", flush=True)

        cold = warm = None
        if not args.no_warm:
            store = Path(tmp) / "store"
            store.mkdir()
            env = separate_store(store)
            try:
                shas.append(world.commit())
                cold = run_conveyor(world, env)
                shas.append(world.commit(app_only=True))
                warm = run_conveyor(world, env)
            finally:
                remove_store(store)
    remove_images(shas)
    report(ours, theirs, one_by_one, cold, warm)


def report(
    ours: list[Timing],
    theirs: list[Timing],
    one_by_one: list[Timing],
    cold: Timing | None,
    warm: Timing | None,
) -> None:
    total_ours = median([t.total for t in ours])
    total_theirs = median([t.total for t in theirs])
    print()
    print(f"whole pipeline, median of {len(ours)} rounds (target ratio <= 0.70)")
    renderer = "kustomize build" if (TOOLS / "kustomize").is_file() else "kubectl kustomize"
    print(f"  (the manifest stage renders with {renderer})")
    print(f"  conveyor run        {total_ours:6.2f} s")
    print(f"  sequential script   {total_theirs:6.2f} s")
    print(f"  ratio               {total_ours / total_theirs:6.2f}")
    sequential = median([t.total for t in one_by_one])
    print(f"  conveyor, one stage at a time (--capacity 1): {sequential:.2f} s")
    print()
    print("per stage, median: conveyor's stage vs the script's raw tool calls for it")
    print("  (target: stage <= 1.2 x raw + 0.1 s; 'parallel' stages share the cores,")
    print("   'alone' is --capacity 1, one stage at a time like the script)")
    print(f"  {'stage':10s} {'parallel':>9s} {'alone':>9s} {'raw':>9s} {'alone/raw':>10s}  within")
    for step in STEPS:
        mine = median([t.stages[step] for t in ours if step in t.stages])
        alone = median([t.stages[step] for t in one_by_one if step in t.stages])
        raw = median([t.stages[step] for t in theirs if step in t.stages])
        within = "yes" if alone <= 1.2 * raw + 0.1 else "no"
        print(f"  {step:10s} {mine:8.2f}s {alone:8.2f}s {raw:8.2f}s {alone / raw:10.2f}  {within}")
    if cold is not None and warm is not None:
        print()
        print("warm run: a commit that changes only app.py, after a cold run in an empty store")
        print("  (target ratio <= 0.50)")
        print(f"  cold                {cold.total:6.2f} s")
        print(f"  warm                {warm.total:6.2f} s")
        print(f"  ratio               {warm.total / cold.total:6.2f}")
        for step in STEPS:
            if step in cold.stages and step in warm.stages:
                before, after = cold.stages[step], warm.stages[step]
                print(f"    {step:10s} cold {before:6.2f}s  warm {after:6.2f}s")


if __name__ == "__main__":
    main()
