"""A span processor that writes every finished span of a run into the run store.

Which run a span belongs to is learnt from its lineage: the ``conveyor.run``
span carries the run id, and every span started under it inherits that id
from its parent.  (Several runs may share one trace id when a CI job hands
all of them the same ``TRACEPARENT``.)  A span is written as soon as it
ends, redacted, so a run that crashes still leaves what finished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import format_span_id, format_trace_id
from opentelemetry.util.types import AnyValue, Attributes

from conveyor.errors import RunStoreError
from conveyor.secrets import Redactor
from conveyor.telemetry.redaction import redacted
from conveyor.telemetry.store import RUN_SPAN, AttributeValue, RunStore, SpanEvent, SpanRecord

_log = logging.getLogger(__name__)


def to_record(span: ReadableSpan) -> SpanRecord:
    """The finished ``span`` as plain data."""
    context = span.context
    assert context is not None  # every SDK span has one
    return SpanRecord(
        name=span.name,
        trace_id=format_trace_id(context.trace_id),
        span_id=format_span_id(context.span_id),
        parent_id=format_span_id(span.parent.span_id) if span.parent is not None else None,
        start=span.start_time or 0,
        end=span.end_time or span.start_time or 0,
        status=span.status.status_code.name.lower(),
        status_message=span.status.description or "",
        attributes=_plain(span.attributes),
        events=tuple(
            SpanEvent(event.name, event.timestamp, _plain(event.attributes))
            for event in span.events
        ),
    )


def _plain(attributes: Attributes) -> dict[str, AttributeValue]:
    if not attributes:
        return {}
    return {key: _json_value(value) for key, value in attributes.items()}


def _json_value(value: AnyValue) -> AttributeValue:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    return tuple(_json_value(item) for item in value)


class RunRecorder(SpanProcessor):
    """Appends each finished span of a run to ``<store>/<run-id>/spans.jsonl``.

    Spans outside any run are not recorded.  A write that fails is noted once
    in ``store.failures`` and never fails the pipeline.

    Args:
        store: The run store.
        redactor: Masks secrets in what is written.
    """

    def __init__(self, store: RunStore, redactor: Redactor | None = None) -> None:
        self.store = store
        self.redactor = redactor if redactor is not None else Redactor()
        self._runs: dict[int, str] = {}
        self._traces: dict[int, str] = {}
        self._lock = threading.Lock()
        self._warned = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Learn the span's run from its own attributes or from its parent."""
        context = span.get_span_context()
        run_id = span.attributes.get("conveyor.run.id") if span.attributes else None
        with self._lock:
            if span.name == RUN_SPAN and isinstance(run_id, str):
                self._runs[context.span_id] = run_id
                self._traces[context.trace_id] = run_id
                return
            parent = span.parent
            found = self._runs.get(parent.span_id) if parent is not None else None
            if found is None:
                # A late child whose parent already ended: fall back to the trace.
                found = self._traces.get(context.trace_id) if parent is not None else None
            if found is not None:
                self._runs[context.span_id] = found

    def on_end(self, span: ReadableSpan) -> None:
        """Write the finished span to its run's file."""
        context = span.context
        if context is None:
            return
        with self._lock:
            run_id = self._runs.pop(context.span_id, None)
        if run_id is None:
            return
        try:
            self.store.write(run_id, [to_record(redacted(span, self.redactor))])
        except (OSError, RunStoreError) as error:
            if not self._warned:
                self._warned = True
                # the run's owner reports store.failures once, with the run's other
                # bookkeeping failures (conveyor run prints one warning line)
                _log.debug("cannot record spans of run %s: %s", run_id, error)
                if isinstance(error, OSError):
                    self.store.note_failure(f"spans of run {run_id}", error)
