"""Time ``conveyor --help`` and ``conveyor graph`` start-up, interleaved, against floors.

Each round runs, one after the other in a fresh interpreter:

* the floors: ``python -c pass`` (the interpreter), ``import rich.console``
  (what drawing the root help needs), ``import typer`` and ``import typer,
  typer.rich_utils`` (what typer's own help would need before any of Conveyor
  loads), ``import pydantic``, ``from pydantic import BaseModel, Field``
  (pydantic loads its model machinery lazily: this is what any model costs)
  and ``import pydantic, typer``;
* ``conveyor --help`` and ``conveyor graph`` (in ``examples/hello``) from this tree;
* with ``--against REV``, the same two from that git revision (exported to a
  temp dir and put first on ``PYTHONPATH``; its graph draws its own
  ``examples/hello``, which may hold fewer stages), for a before/after ratio.

Prints the medians (targets: --help <= 150 ms, graph <= 250 ms) and ratios.
On a loaded machine the absolute figures swell; the ratios hold better.

The source trees are byte-compiled first (``compileall``): an installed
Conveyor has its ``.pyc`` files, and with ``PYTHONDONTWRITEBYTECODE`` set (as
on this project's machines) every run would otherwise compile its modules.

Run: ``.venv/bin/python bench/startup.py [--rounds N] [--against REV]``.
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "examples" / "hello"
MAIN = "import sys; from conveyor.cli.entry import main; sys.argv[0] = 'conveyor'; main()"
# before the console script moved to conveyor.cli.entry (for --against an older REV)
OLD_MAIN = "import sys; from conveyor.cli.app import main; sys.argv[0] = 'conveyor'; main()"


def timed(argv: list[str], *, cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def export(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", rev, "src", "examples/hello"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--against", help="a git revision to compare with")
    args = parser.parse_args()

    python = sys.executable
    here = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        floors = {
            "python -c pass": "pass",
            "import rich.console": "import rich.console",
            "import typer": "import typer",
            "import typer + rich_utils": "import typer, typer.rich_utils",
            "import pydantic": "import pydantic",
            "pydantic BaseModel, Field": "from pydantic import BaseModel, Field",
            "import pydantic + typer": "import pydantic, typer",
        }
        cases: dict[str, tuple[list[str], Path, dict[str, str]]] = {
            name: ([python, "-c", code], ROOT, here) for name, code in floors.items()
        }
        cases["conveyor --help"] = ([python, "-c", MAIN, "--help"], ROOT, here)
        cases["conveyor graph"] = ([python, "-c", MAIN, "graph"], HELLO, here)
        compileall.compile_dir(ROOT / "src", quiet=1)
        if args.against:
            src = export(args.against, Path(tmp))
            compileall.compile_dir(src, quiet=1)
            there = {**os.environ, "PYTHONPATH": str(src)}
            main = MAIN if (src / "conveyor" / "cli" / "entry.py").exists() else OLD_MAIN
            cases[f"--help at {args.against}"] = ([python, "-c", main, "--help"], ROOT, there)
            # that revision's example: the configuration its code reads
            hello = src.parent / "examples" / "hello"
            cases[f"graph at {args.against}"] = ([python, "-c", main, "graph"], hello, there)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (argv, cwd, env) in cases.items():
                times[name].append(timed(argv, cwd=cwd, env=env))
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"start-up, median of {args.rounds} interleaved rounds")
    for name, value in medians.items():
        print(f"  {name:32s} {value:7.0f} ms")
    if args.against:
        for command in ("--help", "graph"):
            now = medians[f"conveyor {command}"]
            before = medians[f"{command} at {args.against}"]
            print(f"  ratio {command:8s} now / {args.against}: {now / before:5.2f}")


if __name__ == "__main__":
    main()
