"""The stage graph: stages with ``needs``, validated once, selectable in part.

A :class:`Pipeline` is built from :class:`Stage` values and validated at once:
a duplicate name, an unknown dependency or a cycle (reported as the path
``a -> b -> a``) raises a :class:`~conveyor.errors.GraphError`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from conveyor.errors import (
    CycleError,
    DuplicateStageError,
    UnknownDependencyError,
    UnknownStageError,
)

Outputs = Mapping[str, str]
"""What a stage hands to later stages and to the trace: string keys and values."""

StageInputs = Mapping[str, Outputs]
"""The outputs of every stage that has succeeded so far, by stage name."""

StageFunction = Callable[[StageInputs], Awaitable[Outputs | None]]


@dataclass(frozen=True)
class Stage:
    """One node of the pipeline.

    Attributes:
        name: Unique name.
        run: The async function; it receives the outputs of finished stages.
        needs: Names of the stages that must succeed first.
        timeout: Seconds one attempt may take (``None``: no limit).
        retries: Extra attempts after a failure (permanent errors are not retried).
        backoff: Seconds before the first retry; doubled for each next one.
        always: Run once the dependencies have finished, whatever their outcome.
        description: One line for ``conveyor graph`` and ``plan``.
        skip_reason: Set when the stage is known not to run (nothing changed
            under its paths); it is skipped with this reason.  Its
            dependents should not need it: they would be skipped too.
        services: What runs beside the stage while it runs (``db:
            postgres:16.4``), for drawing the graph.
        group: What the stage belongs to, for drawings (the image of a
            per-image stage: ``api`` for ``build-api``); ``""``: nothing.
    """

    name: str
    run: StageFunction
    needs: tuple[str, ...] = ()
    timeout: float | None = None
    retries: int = 0
    backoff: float = 1.0
    always: bool = False
    description: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    skip_reason: str | None = None
    services: tuple[str, ...] = ()
    group: str = ""


@dataclass(frozen=True)
class Selection:
    """Which stages run, and why the others do not."""

    run: frozenset[str]
    skipped: Mapping[str, str]


class Pipeline:
    """A validated DAG of stages.

    Raises:
        DuplicateStageError, UnknownDependencyError, CycleError: the graph is invalid.
    """

    def __init__(self, stages: Iterable[Stage]) -> None:
        self._stages: dict[str, Stage] = {}
        for stage in stages:
            if stage.name in self._stages:
                raise DuplicateStageError(stage.name)
            self._stages[stage.name] = stage
        for stage in self._stages.values():
            for dependency in stage.needs:
                if dependency not in self._stages:
                    raise UnknownDependencyError(stage.name, dependency, list(self._stages))
        self._dependents: dict[str, list[str]] = {name: [] for name in self._stages}
        for stage in self._stages.values():
            for dependency in stage.needs:
                self._dependents[dependency].append(stage.name)
        self._order = self._topological_order()

    @property
    def stages(self) -> Mapping[str, Stage]:
        return self._stages

    @property
    def order(self) -> tuple[str, ...]:
        """Stage names in a dependency-respecting order (stable: definition order wins ties)."""
        return self._order

    def __getitem__(self, name: str) -> Stage:
        return self._stages[name]

    def __len__(self) -> int:
        return len(self._stages)

    def dependents(self, name: str) -> Sequence[str]:
        return self._dependents[name]

    def _topological_order(self) -> tuple[str, ...]:
        pending = {name: len(stage.needs) for name, stage in self._stages.items()}
        ready = deque(name for name, count in pending.items() if count == 0)
        order: list[str] = []
        while ready:
            name = ready.popleft()
            order.append(name)
            for dependent in self._dependents[name]:
                pending[dependent] -= 1
                if pending[dependent] == 0:
                    ready.append(dependent)
        if len(order) != len(self._stages):
            raise CycleError(self._find_cycle({n for n, c in pending.items() if c > 0}))
        return tuple(order)

    def _find_cycle(self, candidates: set[str]) -> list[str]:
        # Walk 'needs' edges inside the unresolved part until a node repeats.
        start = min(candidates, key=list(self._stages).index)
        path: list[str] = []
        seen: dict[str, int] = {}
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = next(d for d in self._stages[node].needs if d in candidates)
        return [*path[seen[node] :], node]

    def upstream(self, names: Iterable[str]) -> set[str]:
        """``names`` and everything they need, transitively."""
        result: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in result:
                result.add(name)
                stack.extend(self._stages[name].needs)
        return result

    def downstream(self, names: Iterable[str]) -> set[str]:
        """``names`` and everything that needs them, transitively."""
        result: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in result:
                result.add(name)
                stack.extend(self._dependents[name])
        return result

    def select(
        self,
        only: Sequence[str] = (),
        skip: Sequence[str] = (),
        skip_reasons: Mapping[str, str] | None = None,
    ) -> Selection:
        """The stages to run for ``--only`` (with dependencies) and ``--skip``.

        With ``only``, an ``always`` stage runs too when one of its needs is
        chosen (the report stage writes summary.json for any selection).
        ``skip_reasons`` skips its stages as ``skip`` does, each with the
        reason given (a validation run's).

        Raises:
            UnknownStageError: a name is not a stage.
        """
        reasons = dict(skip_reasons or {})
        for name in (*only, *skip, *reasons):
            if name not in self._stages:
                raise UnknownStageError(name, list(self._stages))
        chosen = self.upstream(only) if only else set(self._stages)
        if only:  # an always stage (the report, a cleanup) runs when a stage it needs runs
            chosen |= {
                name
                for name, stage in self._stages.items()
                if stage.always and chosen.intersection(stage.needs)
            }
        skipped: dict[str, str] = {
            name: f"not selected by --only {', '.join(only)}"
            for name in self._order
            if name not in chosen
        }
        for name, stage in self._stages.items():
            if stage.skip_reason is not None and name not in skipped:
                skipped[name] = stage.skip_reason
        skipped.update(reasons)
        for name in skip:
            skipped[name] = "requested with --skip"
        return Selection(run=frozenset(chosen - set(skip) - set(reasons)), skipped=skipped)
