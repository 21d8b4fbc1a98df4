"""What a stage's services cost on podman: one run of ``true`` with 0, 1 and 3 services.

Each service is ``python3 -m http.server`` in the base image (it opens its
port within a fraction of a second), so the figures are the engine's own
overhead: the run's network, starting each service, waiting for its port,
removing the services and the network.  Prints the median wall time of each
case over the rounds and the difference to the run without services.
Run: ``.venv/bin/python bench/services.py [--rounds N] [--image IMAGE]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from conveyor.engines.podman import PodmanEngine
from conveyor.engines.port import RunSpec, ServiceBinding


def bindings(count: int, image: str) -> list[ServiceBinding]:
    return [
        ServiceBinding(f"svc{i}", image, 8000, command=["python3", "-m", "http.server", "8000"])
        for i in range(count)
    ]


async def timed(engine: PodmanEngine, spec: RunSpec) -> float:
    begun = time.perf_counter()
    result = await engine.run(spec)
    took = time.perf_counter() - begun
    assert result.exit_code == 0, result.stderr
    return took


async def main(rounds: int, image: str) -> None:
    engine = PodmanEngine()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch)
        cases = {
            n: RunSpec(image, ["true"], source, services=bindings(n, image)) for n in (0, 1, 3)
        }
        await timed(engine, cases[1])  # warm: the first podman info, caches
        times: dict[int, list[float]] = {n: [] for n in cases}
        for _ in range(rounds):
            for n, spec in cases.items():
                times[n].append(await timed(engine, spec))
    base = statistics.median(times[0])
    print(f"podman, {rounds} rounds, median wall time of one run of 'true':")
    for n, values in times.items():
        median = statistics.median(values)
        extra = "" if n == 0 else f"  (+{median - base:.2f}s, {(median - base) / n:.2f}s/service)"
        print(f"  {n} service(s): {median:.2f}s{extra}")
    leftovers = await engine.remove_leftovers()
    print(f"left behind: {len(leftovers)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image", default="localhost/conveyor/python:3.11")
    args = parser.parse_args()
    anyio.run(main, args.rounds, args.image)
