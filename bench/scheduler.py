"""Scheduler benchmarks: overhead per stage, parallel efficiency, CLI cold start.

Run: ``.venv/bin/python bench/scheduler.py [--against REV [--rounds N]]``.
Prints figures; asserts nothing.  ``--against REV`` runs the 1,000 and
10,000-stage figures of this tree and of that git revision alternately, each
in a fresh interpreter, and prints both with their ratio (on a loaded machine
the absolute figures swell; the ratio holds better).

- Overhead: wall time of a pipeline of no-op stages divided by the number of
  stages, for chains (each needs the previous), wide fan-out (all
  independent, then one join) and random DAGs (each stage needs up to three
  earlier ones, seeded), at 10 ... 10,000 stages.  Target < 50 us/stage,
  growing linearly (the per-stage figure stays flat).
- Custom stages: 1,000 stages configured the way a user's own stages are
  (a random DAG of needs, a timeout, a retry, and a hook watching the run, as
  the journal does) against the same DAG of bare stages: the per-stage
  overhead stays the same.
- Parallel efficiency: a DAG of sleeping stages; wall time over the critical
  path (the longest chain of sleeps).  Target <= 1.05.
- Cold start: ``conveyor --help`` against ``python -c pass``, interleaved,
  medians side by side.  Target < 150 ms (bench/startup.py has the floors).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import anyio

from conveyor.pipeline.graph import Outputs, Pipeline, Stage, StageInputs
from conveyor.pipeline.hooks import Hooks
from conveyor.pipeline.journal import Journal
from conveyor.pipeline.scheduler import run_pipeline

ROOT = Path(__file__).resolve().parents[1]


async def noop(inputs: StageInputs) -> Outputs | None:
    return None


def chain(n: int) -> Pipeline:
    return Pipeline(Stage(f"s{i}", noop, needs=(f"s{i - 1}",) if i else ()) for i in range(n))


def fan_out(n: int) -> Pipeline:
    stages = [Stage("root", noop)]
    stages += [Stage(f"s{i}", noop, needs=("root",)) for i in range(n - 2)]
    stages.append(Stage("join", noop, needs=tuple(f"s{i}" for i in range(n - 2))))
    return Pipeline(stages)


def random_dag(n: int, *, custom: bool = False, seed: int = 13) -> Pipeline:
    """Each stage needs up to three earlier ones (the same graph for one ``n`` and seed).

    ``custom``: every stage also has a timeout and a retry, as a user's own stage would.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible graph, not cryptography
    settings = {"timeout": 600.0, "retries": 1} if custom else {}
    stages = []
    for i in range(n):
        needs = (
            tuple(sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(0, 3))})) if i else ()
        )
        stages.append(Stage(f"s{i}", noop, needs=needs, **settings))  # type: ignore[arg-type]
    return Pipeline(stages)


SHAPES = {
    "chain": chain,
    "fan": fan_out,
    "random": random_dag,
    "custom": lambda n: random_dag(n, custom=True),
}


def overhead(shape: str, n: int, repeats: int) -> float:
    """Best wall time per stage of ``run_pipeline`` itself (event loop already running).

    ``custom`` runs with a journal among the hooks, as ``conveyor run`` does.
    """
    build = SHAPES[shape]
    best = float("inf")

    async def once() -> float:
        pipeline = build(n)
        hooks: Hooks | None = Journal() if shape == "custom" else None
        started = time.perf_counter()
        result = await run_pipeline(pipeline, capacity=max(4, n), hooks=hooks)
        elapsed = time.perf_counter() - started
        if not result.ok:
            raise RuntimeError("a no-op stage failed")
        return elapsed

    for _ in range(repeats):
        best = min(best, anyio.run(once))
    return best / n * 1e6


def sleeper(seconds: float):  # type: ignore[no-untyped-def]
    async def run(inputs: StageInputs) -> Outputs | None:
        await anyio.sleep(seconds)
        return None

    return run


def efficiency() -> tuple[float, float]:
    # test (0.3) | build (0.2) -> scan (0.2) + smoke (0.15) -> publish (0.1) -> manifest (0.1)
    # and 20 side stages of 0.1 s: critical path 0.2 + 0.2 + 0.1 + 0.1 = 0.6 s
    stages = [
        Stage("test", sleeper(0.3)),
        Stage("build", sleeper(0.2)),
        Stage("scan", sleeper(0.2), needs=("build",)),
        Stage("smoke", sleeper(0.15), needs=("build",)),
        Stage("publish", sleeper(0.1), needs=("test", "scan", "smoke")),
        Stage("manifest", sleeper(0.1), needs=("publish",)),
    ]
    stages += [Stage(f"lint{i}", sleeper(0.1)) for i in range(20)]
    pipeline = Pipeline(stages)
    started = time.perf_counter()
    anyio.run(lambda: run_pipeline(pipeline, capacity=64))
    wall = time.perf_counter() - started
    return wall, 0.6


def cold_start(rounds: int = 15) -> tuple[float, float]:
    conveyor = Path(sys.executable).with_name("conveyor")
    base: list[float] = []
    cli: list[float] = []
    for _ in range(rounds):
        for command, sink in (
            ([sys.executable, "-c", "pass"], base),
            ([str(conveyor), "--help"], cli),
        ):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            sink.append(time.perf_counter() - started)
    return statistics.median(base) * 1e3, statistics.median(cli) * 1e3


CELLS = [(shape, n) for n in (1_000, 10_000) for shape in ("chain", "fan", "random")]
CELLS.append(("custom", 1_000))


def export(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def cell(shape: str, n: int, src: Path) -> float:
    """One figure from a fresh interpreter that imports Conveyor from ``src``."""
    done = subprocess.run(
        [sys.executable, __file__, "--cell", shape, str(n)],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def against(rev: str, rounds: int) -> None:
    """This tree against ``rev``, cell by cell, alternating, in fresh interpreters."""
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        trees = {"now": ROOT / "src", rev: export(rev, Path(tmp))}
        best: dict[tuple[str, str, int], float] = {}
        for _ in range(rounds):
            for shape, n in CELLS:
                for label, src in trees.items():
                    figure = cell(shape, n, src)
                    key = (label, shape, n)
                    best[key] = min(best.get(key, figure), figure)
    print(f"us/stage, best of {rounds} alternating rounds (each best of 3 runs); target < 50")
    print(f"{'shape':>8} {'stages':>8} {'now':>8} {rev:>10} {'ratio':>7}")
    for shape, n in CELLS:
        now, before = best[("now", shape, n)], best[(rev, shape, n)]
        print(f"{shape:>8} {n:>8} {now:>8.1f} {before:>10.1f} {now / before:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="a git revision to compare with, cell by cell")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cell", nargs=2, metavar=("SHAPE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        print(overhead(args.cell[0], int(args.cell[1]), 3))
        return
    if args.against:
        against(args.against, args.rounds)
        return
    print("scheduler overhead per stage (best of 5, 3 at 10,000; us/stage; target < 50)")
    print(f"{'stages':>8} {'chain':>10} {'fan-out':>10} {'random':>10}")
    for n in (10, 100, 1_000, 10_000):
        repeats = 5 if n < 10_000 else 3
        figures = [overhead(shape, n, repeats) for shape in ("chain", "fan", "random")]
        print(f"{n:>8}" + "".join(f" {figure:>10.1f}" for figure in figures))
    bare, custom = overhead("random", 1_000, 5), overhead("custom", 1_000, 5)
    print(
        "\n1,000 custom stages (random needs, timeout, retry, a journal hook): "
        f"{custom:.1f} us/stage against {bare:.1f} for the same DAG of bare stages"
        f" (ratio {custom / bare:.2f})"
    )
    wall, critical = efficiency()
    ratio = wall / critical
    print(f"\nparallel efficiency: wall {wall:.3f}s / critical path {critical:.3f}s = {ratio:.3f}")
    print("(target <= 1.05)")
    base, cli = cold_start()
    print(
        f"\ncold start median: python -c pass {base:.0f} ms, conveyor --help {cli:.0f} ms "
        f"(ratio {cli / base:.1f}x; target < 150 ms, see bench/startup.py)"
    )


if __name__ == "__main__":
    main()
