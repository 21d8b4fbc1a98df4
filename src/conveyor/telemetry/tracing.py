"""Tracing as a lifecycle hook: one span for the run, one per stage, one per attempt,
one per external process.

The scheduler calls :class:`TracingHooks` and knows nothing of OpenTelemetry
(Hamilton's ``h_opentelemetry`` pattern).  Stages run in concurrent anyio
tasks, so run and stage spans are never made current: every span names its
parent explicitly.  Only an attempt span becomes current, inside the stage's
own task, for as long as the attempt runs, so spans the stage code creates
nest under it.  Every attribute value goes through the redactor: a secret
never lands in a span.

:class:`ProcessSpans` are the process core's hooks
(:func:`conveyor.process.observe_processes`): every git, kubectl, podman or
skopeo process becomes a child span of the span current where it starts
(the attempt's, also in a worker thread: anyio copies the context there),
named for the program and its sub-command, ``git push`` or ``podman build``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, StatusCode, Tracer, TracerProvider
from opentelemetry.util.types import AttributeValue

import conveyor
from conveyor.pipeline.hooks import NoHooks, RunInfo
from conveyor.pipeline.result import PipelineResult, StageResult, Status
from conveyor.secrets import Redactor
from conveyor.telemetry.redaction import redact_value

RUN_SPAN = "conveyor.run"
INSTRUMENTATION = "conveyor"
PROCESS_COMMAND = "conveyor.process.command"
"""The attribute holding a process span's command line (redacted)."""
PROCESS_EXIT_CODE = "conveyor.process.exit_code"
"""The exit code of a process that ran to its end."""
RUN_OUTPUT_PREFIX = "run."
"""A stage output named ``run.X`` is also the run span's attribute ``conveyor.run.X``."""
STAGE_NOT_RUN_EVENT = "stage skipped"
"""The run span's event for a stage that never started (it gets no span of its own)."""


def stage_span_name(stage: str) -> str:
    """The name of a stage's span."""
    return f"stage {stage}"


def attempt_span_name(number: int) -> str:
    """The name of an attempt's span."""
    return f"attempt {number}"


class TracingHooks(NoHooks):
    """Pipeline hooks that trace a run with OpenTelemetry.

    Args:
        tracer_provider: Where spans go (see :func:`conveyor.telemetry.setup.start_tracing`).
        redactor: Masks secret values in every attribute, status and exception text.
        parent: The run span's parent context (from ``TRACEPARENT``); ``None``
            means the context current when the run starts.
        after_run: Called once the run span has ended (flush and shut the provider down).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider,
        *,
        redactor: Redactor | None = None,
        parent: Context | None = None,
        after_run: Callable[[], None] | None = None,
    ) -> None:
        self._tracer: Tracer = tracer_provider.get_tracer(
            INSTRUMENTATION, getattr(conveyor, "__version__", None)
        )
        self._redact = redactor if redactor is not None else Redactor()
        self._parent = parent
        self._after_run = after_run
        self._run: Span | None = None
        self._run_context: Context | None = None
        self._stages: dict[str, Span] = {}

    @property
    def run_span(self) -> Span | None:
        """The span of the run in progress (``None`` outside a run)."""
        return self._run

    def on_run_start(self, run: RunInfo) -> None:
        """Open the ``conveyor.run`` span."""
        attributes: dict[str, AttributeValue] = {
            "conveyor.run.id": run.run_id,
            "conveyor.run.stages": tuple(run.stages),
        }
        for key, value in run.attributes.items():
            attributes[key if key.startswith("conveyor.") else f"conveyor.{key}"] = value
        self._run = self._tracer.start_span(
            RUN_SPAN, context=self._parent, attributes=self._clean(attributes)
        )
        self._run_context = trace.set_span_in_context(self._run, Context())
        self._stages = {}

    def on_stage_start(self, stage: str) -> None:
        """Open the stage's span as a child of the run span."""
        self._stages[stage] = self._tracer.start_span(
            stage_span_name(stage),
            context=self._run_context,
            attributes={"conveyor.stage": stage},
        )

    @contextmanager
    def attempt(self, stage: str, number: int) -> Iterator[None]:
        """Run one attempt inside its span, made current for the stage's own spans."""
        parent = self._stages.get(stage)
        context = trace.set_span_in_context(parent) if parent is not None else self._run_context
        span = self._tracer.start_span(
            attempt_span_name(number),
            context=context,
            attributes={"conveyor.stage": stage, "conveyor.attempt": number},
        )
        # use_span attaches the span to *this* task's context and detaches it
        # on exit, in the same task: tasks the stage starts inherit it.
        with trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            try:
                yield
            except Exception as error:
                self._record(span, error)
                span.set_attribute("conveyor.status", Status.FAILED.value)
                raise
            except BaseException:
                # Cancellation (fail-fast) or an interrupt: not the stage's error.
                span.set_attribute("conveyor.status", Status.CANCELLED.value)
                raise
            span.set_attribute("conveyor.status", Status.SUCCESS.value)
            span.set_status(StatusCode.OK)

    def on_stage_end(self, result: StageResult) -> None:
        """Close the stage's span with its result.

        A stage that never started (skipped for a failed dependency, or not
        selected) gets no span -- a 0 s span would claim it ran -- but an event
        ``stage skipped`` on the run span, with its name, status and reason.
        """
        span = self._stages.pop(result.name, None)
        if span is None:
            if self._run is not None:
                self._run.add_event(
                    STAGE_NOT_RUN_EVENT,
                    self._clean(
                        {
                            "conveyor.stage": result.name,
                            "conveyor.status": result.status.value,
                            "conveyor.reason": result.reason,
                        }
                    ),
                )
            return
        attributes: dict[str, AttributeValue] = {
            "conveyor.stage": result.name,
            "conveyor.status": result.status.value,
            "conveyor.attempts": result.attempts,
            "conveyor.reason": result.reason,
        }
        for key, value in result.outputs.items():
            attributes[f"conveyor.output.{key}"] = value
        span.set_attributes(self._clean(attributes))
        # a stage's ``run.X`` outputs describe the run: ``conveyor.run.X`` on its span
        run_attributes: dict[str, AttributeValue] = {
            f"conveyor.{key}": value
            for key, value in result.outputs.items()
            if key.startswith(RUN_OUTPUT_PREFIX)
        }
        if run_attributes and self._run is not None:
            self._run.set_attributes(self._clean(run_attributes))
        if result.status is Status.FAILED:
            span.set_status(StatusCode.ERROR, self._redact(result.reason))
        elif result.status is Status.SUCCESS:
            span.set_status(StatusCode.OK)
        span.end()

    def on_run_end(self, run: RunInfo, result: PipelineResult) -> None:
        """Close the run span (and any stage span the scheduler left open)."""
        for span in self._stages.values():
            span.end()
        self._stages = {}
        if self._run is None:
            return
        status = Status.SUCCESS if result.ok else Status.FAILED
        self._run.set_attribute("conveyor.status", status.value)
        failure = result.first_failure
        if failure is not None:
            self._run.set_status(
                StatusCode.ERROR, self._redact(f"stage {failure.name!r} failed: {failure.reason}")
            )
        elif not result.ok:
            self._run.set_status(StatusCode.ERROR, "a stage was cancelled")
        else:
            self._run.set_status(StatusCode.OK)
        self._run.end()
        self._run = None
        self._run_context = None
        if self._after_run is not None:
            self._after_run()

    def _clean(self, attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
        return {key: redact_value(value, self._redact) for key, value in attributes.items()}

    def _record(self, span: Span, error: Exception) -> None:
        """``Span.record_exception`` without the secret: message and stack are redacted."""
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        message = self._redact(str(error))
        span.add_event(
            "exception",
            {
                "exception.type": f"{type(error).__module__}.{type(error).__qualname__}",
                "exception.message": message,
                "exception.stacktrace": self._redact(stack),
            },
        )
        span.set_status(StatusCode.ERROR, message.splitlines()[0] if message else "")


class ProcessSpans:
    """Process hooks that make each external process a span (see the module docstring).

    Args:
        tracer_provider: Where spans go.
        redactor: Masks secret values in the command line and the error.
    """

    def __init__(
        self, tracer_provider: TracerProvider, *, redactor: Redactor | None = None
    ) -> None:
        self._tracer: Tracer = tracer_provider.get_tracer(
            INSTRUMENTATION, getattr(conveyor, "__version__", None)
        )
        self._redact = redactor if redactor is not None else Redactor()

    @contextmanager
    def process(self, name: str, command: Sequence[str]) -> Iterator[Callable[[int], None]]:
        """One span from the start of the process to its end, with its exit code."""
        attributes = {PROCESS_COMMAND: self._redact(" ".join(command))}
        with self._tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:

            def exited(code: int) -> None:
                span.set_attribute(PROCESS_EXIT_CODE, code)
                status = Status.SUCCESS if code == 0 else Status.FAILED
                span.set_attribute("conveyor.status", status.value)

            try:
                yield exited
            except Exception as error:
                message = self._redact(str(error))
                span.set_attribute("conveyor.status", Status.FAILED.value)
                span.set_status(StatusCode.ERROR, message.splitlines()[0] if message else "")
                raise
            except BaseException:
                span.set_attribute("conveyor.status", Status.CANCELLED.value)
                raise
