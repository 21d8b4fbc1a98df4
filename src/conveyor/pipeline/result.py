"""Results as values: what happened to each stage and to the run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class StageResult:
    """What one stage did.

    Attributes:
        name: The stage.
        status: How it ended.
        reason: Why it failed, was skipped or cancelled ("" on success).
        duration: Seconds from first attempt start to end (0 when never started).
        attempts: How many attempts ran.
        outputs: Values the stage produced (image ref, digest, commit, ...).
        error: The exception of a failed stage, for the CLI's exit code table.
    """

    name: str
    status: Status
    reason: str = ""
    duration: float = 0.0
    attempts: int = 0
    outputs: Mapping[str, str] = field(default_factory=dict)
    error: BaseException | None = field(default=None, compare=False, repr=False)
    started_at: float | None = None


@dataclass(frozen=True)
class PipelineResult:
    """Every stage's result, in the order they finished, and the run's wall time."""

    run_id: str
    results: tuple[StageResult, ...]
    duration: float

    @property
    def ok(self) -> bool:
        """No stage failed or was cancelled (skipped on request is fine)."""
        return not any(r.status in (Status.FAILED, Status.CANCELLED) for r in self.results)

    def __getitem__(self, name: str) -> StageResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def first_failure(self) -> StageResult | None:
        failed = [r for r in self.results if r.status is Status.FAILED]
        return min(failed, key=lambda r: (r.started_at or 0.0) + r.duration) if failed else None
