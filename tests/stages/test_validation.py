"""A validation run (``--validate``): which stages it skips and why, on real configurations.

Pure wiring, read from real files through the loader; nothing runs (the CI
wrappers' tests run ``conveyor run --validate`` for real).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ConfigError, UnknownStageError
from conveyor.pipeline.graph import Pipeline
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import delivery_pipeline
from conveyor.stages.validation import (
    check_validation,
    describe,
    validation_names,
    validation_skips,
)

SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> tuple[DeliveryContext, Pipeline]:
    config = load_config(EXAMPLES / name / "conveyor.toml", env={})
    ctx = DeliveryContext(config, NoEngine(), SHA, EXAMPLES / name / ".conveyor" / "plan")
    return ctx, delivery_pipeline(ctx)


def test_gates_skips_only_publish_and_everything_else_runs() -> None:
    ctx, pipeline = example("hello")
    assert validation_skips(ctx, pipeline, ("gates",)) == {
        "publish": "a validation run (--validate gates) publishes nothing"
    }
    # the user's own gates (lint, integration) are not skipped: publish waits for them
    assert {"lint", "integration"} <= set(pipeline["publish"].needs)
    selection = pipeline.select(skip_reasons=validation_skips(ctx, pipeline, ("gates",)))
    assert {"test", "build", "lint", "scan", "smoke", "integration", "report"} <= selection.run
    # what needs publish (manifest, release-notes, policy) is skipped when the run gets there
    assert "publish" not in selection.run


def test_a_list_runs_those_stages_and_the_report_only() -> None:
    ctx, pipeline = example("hello")
    skips = validation_skips(ctx, pipeline, ("test", "build"))
    assert skips == {
        "publish": "a validation run (--validate test build) publishes nothing",
        "lint": "not in --validate test build",
        "scan": "not in --validate test build",
        "smoke": "not in --validate test build",
        "integration": "not in --validate test build",
        "manifest": "not in --validate test build",
        "release-notes": "not in --validate test build",
        "policy": "not in --validate test build",
    }
    assert pipeline.select(skip_reasons=skips).run == {"test", "build", "report"}


def test_publish_is_skipped_even_when_it_is_listed() -> None:
    ctx, pipeline = example("hello")
    skips = validation_skips(ctx, pipeline, ("build", "publish", "manifest"))
    assert "publish" not in pipeline.select(skip_reasons=skips).run
    assert skips["publish"].endswith("publishes nothing")


def test_an_images_kind_keeps_every_images_stage_of_it() -> None:
    ctx, pipeline = example("monorepo")
    images = [name for name in pipeline.order if name.startswith("build-")]
    assert len(images) == 2
    skips = validation_skips(ctx, pipeline, ("build", "scan"))
    run = pipeline.select(skip_reasons=skips).run
    assert {*images, *(n.replace("build-", "scan-") for n in images)} <= run
    # every image's publish, whatever the list
    gates = validation_skips(ctx, pipeline, ("gates",))
    assert sorted(gates) == sorted(n.replace("build-", "publish-") for n in images)


def test_a_configured_stage_that_is_not_in_the_pipeline_is_no_error() -> None:
    # no test stage configured in monorepo: `test` is still a stage name to ask for
    ctx, pipeline = example("monorepo")
    assert "test" not in pipeline.order
    assert "publish-api" in validation_skips(ctx, pipeline, ("test", "build"))


def test_an_unknown_name_is_refused_with_the_stages_there_are() -> None:
    ctx, pipeline = example("hello")
    with pytest.raises(UnknownStageError) as caught:
        validation_skips(ctx, pipeline, ("tset",))
    assert caught.value.message == "no stage named 'tset'"
    assert caught.value.hint == (
        "known stages: build, integration, lint, manifest, policy, publish, release-notes, "
        "report, scan, smoke, test"
    )


def test_no_names_is_no_validation() -> None:
    ctx, pipeline = example("hello")
    assert validation_skips(ctx, pipeline, ()) == {}


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (["gates"], ("gates",)),
        (["test build  scan"], ("test", "build", "scan")),
        (["test,build", "smoke"], ("test", "build", "smoke")),
        (["test", "test"], ("test",)),
        ([], ()),
        ([" "], ("gates",)),  # asked for, but blank: never a delivery
        (["", ","], ("gates",)),
    ],
)
def test_values_are_split_on_spaces_and_commas(values: list[str], names: tuple[str, ...]) -> None:
    assert validation_names(values) == names


def test_gates_stands_alone() -> None:
    with pytest.raises(ConfigError) as caught:
        validation_names(["gates test"])
    assert caught.value.message == (
        "configuration: --validate: 'gates' stands alone, not with stage names (gates test)"
    )


def test_the_line_a_validation_run_starts_with() -> None:
    assert describe(("gates",)) == (
        "validation: every stage publish waits for; skipped: publish and what needs it"
    )
    assert describe(("test", "build")) == (
        "validation: test build; every other stage is skipped, and publish always"
    )


def test_check_validation_refuses_an_unknown_name_before_any_engine() -> None:
    # what conveyor run and the Dagger module's ci both call before anything runs
    config = load_config(EXAMPLES / "hello" / "conveyor.toml", env={})
    pipeline, skips = check_validation(config, SHA, ("gates",))
    assert skips == {"publish": "a validation run (--validate gates) publishes nothing"}
    assert "report" in pipeline.order
    assert check_validation(config, SHA, ())[1] == {}  # no validation: the graph only
    with pytest.raises(UnknownStageError) as caught:
        check_validation(config, SHA, ("tset",))
    assert caught.value.message == "no stage named 'tset'"
