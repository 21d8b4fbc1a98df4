"""Conveyor's set-image against ``kustomize edit set image`` v5.7.1 on the editor corpus.

Every trial of tests/resources/editor-corpus (each ``case.toml`` says which
directory to edit, the arguments and the expected outcome) is run on two
copies of its layout, one edited by kustomize and one by Conveyor, and the
renders are compared with ``kustomize build`` (see tests/differential.py).
Generated kustomizations (block and flow entries, anchors and aliases, CRLF,
a byte order mark) are compared the same way.  ``bench/editor_differential.py``
prints the figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from differential import (
    Trial,
    corpus_trials,
    generated_strategies,
    kustomize,
    run_trial,
    write_generated,
)

TRIALS = corpus_trials()


@pytest.fixture(scope="module", autouse=True)
def reference() -> Path:
    """kustomize v5.7.1; its absence fails (never skips) every test here."""
    try:
        return kustomize()
    except RuntimeError as error:
        pytest.fail(str(error))


def test_the_corpus_is_large_enough() -> None:
    layouts = {trial.layout.name for trial in TRIALS}
    assert len(layouts) >= 40
    assert {t.expect for t in TRIALS} == {"agree", "refused"}


@pytest.mark.parametrize("trial", TRIALS, ids=[t.name[:80] for t in TRIALS])
def test_corpus_trial(trial: Trial, tmp_path: Path) -> None:
    result = run_trial(trial, tmp_path)
    assert result.outcome == trial.expect, (result.detail, result.message)
    if trial.expect == "refused":
        assert trial.because in result.message


@settings(
    max_examples=25,
    deadline=None,
    # the same 25 layouts every run, so CI is reproducible; bench/editor_differential.py
    # explores new ones (it found the open anchor case in the closing note of issue 9)
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=generated_strategies())
def test_generated_kustomizations_agree_with_kustomize(case: tuple[str, str]) -> None:
    overlay, spec = case
    with tempfile.TemporaryDirectory() as temp:
        layout = write_generated(Path(temp) / "layout", overlay)
        trial = Trial(layout.layout, "overlay", spec)
        result = run_trial(trial, Path(temp) / "work")
    assert result.outcome == "agree", (overlay, spec, result.detail, result.message)
