"""The last line of defence: no finished span leaves the process with a secret in it.

:class:`~conveyor.telemetry.tracing.TracingHooks` redacts what it writes,
but stage code may create its own spans.  Every exporter Conveyor sets up is
wrapped in :class:`RedactingSpanExporter`, and the run store records
:func:`redacted` copies, so the name, attributes, events, links and status
text of every span pass through the redactor on their way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import AnyValue, Attributes

from conveyor.secrets import Redactor


def redact_value(value: AnyValue, redact: Redactor) -> AnyValue:
    """``value`` with every secret masked, in strings at any depth."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_value(item, redact) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return tuple(redact_value(item, redact) for item in value)
    return value


def redact_attributes(attributes: Attributes, redact: Redactor) -> dict[str, AnyValue]:
    """A copy of ``attributes`` with every secret value masked."""
    if not attributes:
        return {}
    return {key: redact_value(value, redact) for key, value in attributes.items()}


def redacted(span: ReadableSpan, redact: Redactor) -> ReadableSpan:
    """A copy of the finished ``span`` with every secret masked."""
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=redact_attributes(span.attributes, redact),
        events=[
            Event(event.name, redact_attributes(event.attributes, redact), event.timestamp)
            for event in span.events
        ],
        links=[
            Link(link.context, redact_attributes(link.attributes, redact)) for link in span.links
        ],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Wraps an exporter so that it only ever sees redacted spans.

    Args:
        inner: The exporter that sends spans out (OTLP, console).
        redactor: Knows the secret values to mask.
    """

    def __init__(self, inner: SpanExporter, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export redacted copies of ``spans``."""
        return self.inner.export([redacted(span, self.redactor) for span in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)
