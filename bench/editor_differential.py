"""Conveyor's image editor against ``kustomize edit set image`` v5.7.1: the figures.

Runs every trial of tests/resources/editor-corpus and ``--generated N``
generated kustomizations (the strategies of tests/differential.py: block and
flow entries, anchors and aliases, CRLF, a byte order mark) through the same
comparison the tests make, and prints for each set: trials tried / agreeing
with kustomize / refused with a clear message / kustomize could not edit /
wrong, then every result that is not an agreement.

Needs kustomize v5.7.1 and helm from ``bash scripts/install-go-tools.sh``.
Run: ``.venv/bin/python bench/editor_differential.py [--generated N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from differential import (
    Tally,
    Trial,
    corpus_trials,
    generated_strategies,
    run_trial,
    write_generated,
)


def corpus() -> Tally:
    tally = Tally()
    with tempfile.TemporaryDirectory() as temp:
        for trial in corpus_trials():
            tally.add(run_trial(trial, Path(temp)))
    return tally


def generated(count: int, seed: int) -> Tally:
    tally = Tally()

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=generated_strategies())
    def trial(case: tuple[str, str]) -> None:
        overlay, spec = case
        with tempfile.TemporaryDirectory() as temp:
            layout = write_generated(Path(temp) / "layout", overlay)
            result = run_trial(Trial(layout.layout, "overlay", spec), Path(temp) / "work")
        result.detail = f"{overlay!r} {spec}: {result.detail}"
        tally.add(result)

    trial()
    return tally


def report(title: str, tally: Tally) -> None:
    print(f"{title}: {tally.line()}")
    for result in tally.results:
        if result.outcome != "agree":
            print(f"  {result.outcome:16} {result.trial.name[:90]} {result.detail[:300]}")
            if result.message:
                print(f"  {'':16} {result.message.splitlines()[0][:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=100, help="generated kustomizations")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generator")
    args = parser.parse_args()
    corpus_tally = corpus()
    layouts = len({r.trial.layout.name for r in corpus_tally.results})
    report(f"corpus ({layouts} layouts)", corpus_tally)
    report(f"generated (seed {args.seed})", generated(args.generated, args.seed))


if __name__ == "__main__":
    main()
