"""The ``@stage`` decorator: an async function declared as a stage of the pipeline.

Declaring checks what can be checked without the rest of the pipeline (the
name, the options, that the function is ``async def`` and takes the
context); what needs the whole graph (unknown ``needs``, cycles, a name used
twice) is checked when the pipeline is wired.  A declaration made while
:func:`collecting` is active is recorded in definition order: that is how
the loader finds the stages of ``pipeline.py``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from conveyor.config.duration import parse_duration

if TYPE_CHECKING:
    from conveyor.dsl.context import StageContext

StageBody = Callable[["StageContext"], Awaitable[Mapping[str, str] | None]]
"""What ``@stage`` decorates: ``async def name(ctx) -> dict[str, str] | None``."""

STAGE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
"""The names a stage may have (as ``[stages.<name>]`` in conveyor.toml)."""


class DeclarationError(ValueError):
    """A ``@stage`` declaration is wrong; the loader reports it with its file and line."""


@dataclass(frozen=True)
class PythonStage:
    """A declared stage: the function and its options, and where it was written.

    Calling it calls the function, so a stage can be tested on its own
    with a context of the test's making.

    Attributes:
        name: The stage's name (the function's, ``-`` for ``_``, unless ``name=``).
        body: The async function.
        needs: The stages that must succeed first.
        gate: Publish waits for it (unless it needs publish or manifest).
        always: Runs once its needs have finished, whatever their outcome.
        timeout: Seconds one attempt may take; ``None``: the default (30 minutes,
            or the replaced built-in's).
        retries: Extra attempts after a failure.
        description: One line for ``conveyor graph`` and ``plan``.
        replaces: It takes the place of the built-in stage of the same name.
        file: The file the function is defined in.
        line: The line of its first decorator.
    """

    name: str
    body: StageBody
    needs: tuple[str, ...] = ()
    gate: bool = True
    always: bool = False
    timeout: float | None = None
    retries: int = 0
    description: str = ""
    replaces: bool = False
    file: Path | None = None
    line: int = 0

    async def __call__(self, ctx: StageContext) -> Mapping[str, str] | None:
        return await self.body(ctx)


_collected: list[list[PythonStage]] = []


@contextmanager
def collecting() -> Iterator[list[PythonStage]]:
    """Record every stage declared inside the block, in order (the loader's hook)."""
    stages: list[PythonStage] = []
    _collected.append(stages)
    try:
        yield stages
    finally:
        _collected.remove(stages)


@overload
def stage(body: StageBody, /) -> PythonStage: ...


@overload
def stage(
    *,
    needs: Sequence[str] = (),
    gate: bool = True,
    always: bool = False,
    timeout: float | str | None = None,
    retries: int = 0,
    description: str | None = None,
    name: str | None = None,
    replaces: bool = False,
) -> Callable[[StageBody], PythonStage]: ...


def stage(
    body: StageBody | None = None,
    /,
    *,
    needs: Sequence[str] = (),
    gate: bool = True,
    always: bool = False,
    timeout: float | str | None = None,
    retries: int = 0,
    description: str | None = None,
    name: str | None = None,
    replaces: bool = False,
) -> PythonStage | Callable[[StageBody], PythonStage]:
    """Declare ``async def body(ctx)`` a stage of the pipeline (``@stage`` or ``@stage(...)``).

    Args:
        needs: The stages (built-in, conveyor.toml's or Python) that must succeed first.
        gate: Publish waits for this stage unless it needs ``publish`` or
            ``manifest`` (then it runs after them); ``gate=False``: it gates nothing.
        always: Run once the needs have finished, whatever their outcome (a cleanup).
        timeout: Seconds, or a duration such as ``"5m"``, one attempt may take.
        retries: Extra attempts after a failure (0 to 10).
        description: One line for ``conveyor graph``/``plan``; default: the
            docstring's first line.
        name: The stage's name; default: the function's, ``_`` written ``-``.
        replaces: Replace the built-in stage of this name: it keeps the
            built-in's place in the DAG (its needs, and what waits for it);
            ``await ctx.builtin()`` runs the built-in from inside.  A stage
            named like a built-in without ``replaces=True`` is an error.

    Returns:
        The :class:`PythonStage` (calling it calls the function).

    Raises:
        DeclarationError: a name, an option or the function is not one a stage can have.
    """

    def declare(function: StageBody) -> PythonStage:
        declared = _declaration(
            function,
            needs=needs,
            gate=gate,
            always=always,
            timeout=timeout,
            retries=retries,
            description=description,
            name=name,
            replaces=replaces,
        )
        if _collected:
            _collected[-1].append(declared)
        return declared

    if body is not None:
        return declare(body)
    return declare


def _declaration(
    function: StageBody,
    *,
    needs: Sequence[str],
    gate: bool,
    always: bool,
    timeout: float | str | None,
    retries: int,
    description: str | None,
    name: str | None,
    replaces: bool,
) -> PythonStage:
    label = _check_function(function)
    stage_name = name if name is not None else label.replace("_", "-")
    if not isinstance(stage_name, str) or not STAGE_NAME.match(stage_name):
        raise DeclarationError(
            f"@stage on {label}: the name {stage_name!r} must start with a lower-case letter "
            "and hold only lower-case letters, digits, '-' and '_' (set name=...)"
        )
    if isinstance(needs, str):
        raise DeclarationError(
            f"@stage {stage_name}: needs={needs!r} is a string; write needs=[{needs!r}]"
        )
    for need in needs:
        if not isinstance(need, str) or not STAGE_NAME.match(need):
            raise DeclarationError(f"@stage {stage_name}: needs holds {need!r}, not a stage name")
    for option, value in (("gate", gate), ("always", always), ("replaces", replaces)):
        if not isinstance(value, bool):
            raise DeclarationError(f"@stage {stage_name}: {option}={value!r} is not True or False")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise DeclarationError(f"@stage {stage_name}: retries={retries!r} is not 0 to 10")
    seconds = None
    if timeout is not None:
        try:
            seconds = parse_duration(timeout)
        except ValueError as error:
            raise DeclarationError(f"@stage {stage_name}: timeout: {error}") from None
    if description is not None and not isinstance(description, str):
        raise DeclarationError(f"@stage {stage_name}: description={description!r} is not text")
    doc = (inspect.getdoc(function) or "").strip().splitlines()
    code = getattr(function, "__code__", None)
    return PythonStage(
        name=stage_name,
        body=function,
        needs=tuple(dict.fromkeys(needs)),
        gate=gate,
        always=always,
        timeout=seconds,
        retries=retries,
        description=description if description is not None else (doc[0] if doc else ""),
        replaces=replaces,
        file=Path(code.co_filename) if code is not None else None,
        line=code.co_firstlineno if code is not None else 0,
    )


def _check_function(function: object) -> str:
    """The function's name, once it is known to be ``async def f(ctx)``."""
    label = str(getattr(function, "__name__", repr(function)))
    if isinstance(function, PythonStage):
        raise DeclarationError(f"@stage on {label}: it is a stage already (one @stage each)")
    if not inspect.iscoroutinefunction(function):
        raise DeclarationError(
            f"@stage on {label}: a stage is an 'async def' function taking the context"
        )
    try:
        inspect.signature(function).bind(None)
    except TypeError:
        raise DeclarationError(
            f"@stage on {label}: the function must take one argument, the context "
            f"(async def {label}(ctx): ...)"
        ) from None
    return label
