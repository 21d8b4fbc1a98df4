"""``@stage``: what a declaration records, and the declarations it refuses (with the reason)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.dsl import PythonStage, stage
from conveyor.dsl.declare import DeclarationError, collecting


async def lint_code(ctx: Any) -> dict[str, str]:
    """Lint the code with ruff.

    More words that are not the description.
    """
    return {"ctx": str(ctx)}


def test_a_bare_decorator_takes_the_function_name_and_docstring() -> None:
    declared = stage(lint_code)

    assert isinstance(declared, PythonStage)
    assert declared.name == "lint-code"
    assert declared.description == "Lint the code with ruff."
    assert declared.needs == ()
    assert (declared.gate, declared.always, declared.replaces) == (True, False, False)
    assert (declared.timeout, declared.retries) == (None, 0)
    assert declared.file == Path(__file__)
    assert declared.line == lint_code.__code__.co_firstlineno


def test_options_are_recorded_and_durations_read() -> None:
    declared = stage(
        needs=["test", "build", "test"],
        gate=False,
        always=True,
        timeout="1m30s",
        retries=2,
        description="the linter",
        name="lint",
    )(lint_code)

    assert declared.name == "lint"
    assert declared.needs == ("test", "build")
    assert (declared.gate, declared.always) == (False, True)
    assert (declared.timeout, declared.retries) == (90.0, 2)
    assert declared.description == "the linter"


@pytest.mark.anyio
async def test_calling_the_stage_calls_the_function() -> None:
    assert await stage(lint_code)("the context") == {"ctx": "the context"}


def test_declarations_are_collected_in_order_only_while_collecting() -> None:
    async def a(ctx: Any) -> None: ...

    async def b(ctx: Any) -> None: ...

    with collecting() as stages:
        first = stage(b)
        second = stage(name="a-stage")(a)
    outside = stage(a)

    assert stages == [first, second]
    assert outside not in stages


async def _async(ctx: Any) -> None: ...


def _sync(ctx: Any) -> None: ...


async def _no_argument() -> None: ...


async def _two_arguments(ctx: Any, other: Any) -> None: ...


@pytest.mark.parametrize(
    ("function", "options", "message"),
    [
        (_sync, {}, "@stage on _sync: a stage is an 'async def' function taking the context"),
        (
            _no_argument,
            {},
            "@stage on _no_argument: the function must take one argument, the context "
            "(async def _no_argument(ctx): ...)",
        ),
        (
            _two_arguments,
            {},
            "@stage on _two_arguments: the function must take one argument, the context "
            "(async def _two_arguments(ctx): ...)",
        ),
        (
            _async,
            {},
            "@stage on _async: the name '-async' must start with a lower-case letter and hold "
            "only lower-case letters, digits, '-' and '_' (set name=...)",
        ),
        (
            _async,
            {"name": "Lint"},
            "@stage on _async: the name 'Lint' must start with a lower-case letter and hold "
            "only lower-case letters, digits, '-' and '_' (set name=...)",
        ),
        (
            _async,
            {"name": "lint", "needs": "build"},
            "@stage lint: needs='build' is a string; write needs=['build']",
        ),
        (
            _async,
            {"name": "lint", "needs": ["build", 3]},
            "@stage lint: needs holds 3, not a stage name",
        ),
        (_async, {"name": "lint", "gate": "no"}, "@stage lint: gate='no' is not True or False"),
        (_async, {"name": "lint", "retries": 11}, "@stage lint: retries=11 is not 0 to 10"),
        (_async, {"name": "lint", "retries": True}, "@stage lint: retries=True is not 0 to 10"),
        (
            _async,
            {"name": "lint", "timeout": "soon"},
            "@stage lint: timeout: 'soon' is not a duration; use e.g. 30, '30s', '5m' or '1h30m'",
        ),
        (
            _async,
            {"name": "lint", "description": 3},
            "@stage lint: description=3 is not text",
        ),
    ],
    ids=[
        "sync",
        "no-argument",
        "two-arguments",
        "derived-name",
        "upper-case",
        "needs-string",
        "needs-number",
        "gate",
        "retries",
        "retries-bool",
        "timeout",
        "description",
    ],
)
def test_a_wrong_declaration_says_what_is_wrong(
    function: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DeclarationError) as raised:
        stage(**options)(function)

    assert str(raised.value) == message


def test_a_stage_cannot_be_declared_twice() -> None:
    with pytest.raises(DeclarationError, match="it is a stage already"):
        stage(stage(name="lint")(_async))  # type: ignore[arg-type]
