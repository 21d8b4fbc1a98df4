from __future__ import annotations

import pytest

from conveyor.errors import (
    CycleError,
    DuplicateStageError,
    UnknownDependencyError,
    UnknownStageError,
)
from conveyor.pipeline.graph import Outputs, Pipeline, Stage, StageInputs


async def noop(inputs: StageInputs) -> Outputs | None:
    return None


def stage(name: str, *needs: str) -> Stage:
    return Stage(name, noop, needs=needs)


def delivery() -> Pipeline:
    return Pipeline(
        [
            stage("test"),
            stage("build"),
            stage("scan", "build"),
            stage("smoke", "build"),
            stage("publish", "test", "scan", "smoke"),
            stage("manifest", "publish"),
        ]
    )


def test_order_respects_needs_and_definition_order() -> None:
    assert delivery().order == ("test", "build", "scan", "smoke", "publish", "manifest")


def test_duplicate_name_is_refused() -> None:
    with pytest.raises(DuplicateStageError, match="stage 'a' is defined twice"):
        Pipeline([stage("a"), stage("a")])


def test_unknown_dependency_names_stage_dependency_and_known_stages() -> None:
    with pytest.raises(UnknownDependencyError) as info:
        Pipeline([stage("a"), stage("b", "c")])
    assert str(info.value) == (
        "stage 'b' needs 'c', which is not a stage\n  hint: known stages: a, b"
    )


def test_cycle_is_reported_as_a_path() -> None:
    with pytest.raises(CycleError) as info:
        Pipeline([stage("root"), stage("a", "root", "c"), stage("b", "a"), stage("c", "b")])
    assert info.value.cycle == ("a", "c", "b", "a")
    assert "stages form a cycle: a -> c -> b -> a" in str(info.value)


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(CycleError, match="a -> a"):
        Pipeline([stage("a", "a")])


def test_only_selects_the_stage_and_its_dependencies() -> None:
    selection = delivery().select(only=["scan"])
    assert selection.run == {"build", "scan"}
    assert selection.skipped == dict.fromkeys(
        ("test", "smoke", "publish", "manifest"), "not selected by --only scan"
    )


def test_skip_marks_the_stage_skipped_on_request() -> None:
    selection = delivery().select(skip=["smoke"])
    assert "smoke" not in selection.run
    assert selection.skipped == {"smoke": "requested with --skip"}


def test_selecting_an_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(UnknownStageError, match="no stage named 'deploy'"):
        delivery().select(only=["deploy"])


def test_upstream_and_downstream_are_transitive() -> None:
    graph = delivery()
    assert graph.upstream(["publish"]) == {"publish", "test", "build", "scan", "smoke"}
    assert graph.downstream(["scan"]) == {"scan", "publish", "manifest"}
