"""A tracer provider built from the standard ``OTEL_*`` environment variables.

Read here (from the mapping given, ``os.environ`` by default):

============================================  =========================================
``OTEL_SERVICE_NAME``                          ``service.name`` (default ``conveyor``)
``OTEL_RESOURCE_ATTRIBUTES``                   more resource attributes, ``k=v,k=v``
``OTEL_TRACES_EXPORTER``                       ``otlp``, ``console``, ``none`` (a comma list);
                                               unset means none, as in opentelemetry-sdk
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``       ``http/protobuf`` (default) or ``grpc``
                                               (needs opentelemetry-exporter-otlp-proto-grpc)
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``         the full traces URL, used as given
``OTEL_EXPORTER_OTLP_ENDPOINT``                base URL; ``/v1/traces`` is appended
``OTEL_EXPORTER_OTLP_[TRACES_]HEADERS``        ``k=v,k=v``; the values are treated as secrets
``TRACEPARENT``, ``TRACESTATE``                W3C trace context: the run's parent
============================================  =========================================

Whatever the exporter, every span of a run is also written to the local run
store (``.conveyor/runs/<run-id>/spans.jsonl``) for ``conveyor trace``.  A
parent that says "not sampled" keeps spans away from the exporters but not
from the run store.

The provider's span processors are fixed when it is made
(:class:`OwnProcessors`): installed as the global provider, it is where
libraries add their own exporters -- dagger-io's ``telemetry.initialize()``,
run when a Dagger connection opens, adds an OTLP exporter for
``OTEL_TRACES_EXPORTER`` to it -- and every span would be exported twice.

While a run is traced (``with start_tracing(...)``), :func:`run_context`
gives the context of its run span, for work that must open inside it (the
Dagger session).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from contextvars import ContextVar, Token
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

import conveyor
from conveyor.errors import ConfigError
from conveyor.process import observe_processes
from conveyor.secrets import Redactor, Secret
from conveyor.telemetry.recorder import RunRecorder
from conveyor.telemetry.redaction import RedactingSpanExporter
from conveyor.telemetry.store import DEFAULT_ROOT, RunStore
from conveyor.telemetry.tracing import ProcessSpans, TracingHooks

DEFAULT_SERVICE_NAME = "conveyor"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
TRACES_PATH = "/v1/traces"
EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("http/protobuf", "grpc")
_GRPC_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"

logger = logging.getLogger(__name__)

_ACTIVE: ContextVar[Tracing | None] = ContextVar("conveyor_tracing", default=None)


def run_context() -> Context | None:
    """The context of the run span of the run traced now (``None`` outside a run)."""
    tracing = _ACTIVE.get()
    span = tracing.hooks.run_span if tracing is not None else None
    return trace.set_span_in_context(span, Context()) if span is not None else None


class OwnProcessors(TracerProvider):
    """A tracer provider whose span processors are the ones it was built with.

    Once :meth:`seal` is called, ``add_span_processor`` refuses (and shuts
    down) what a library adds: this provider already exports to what the
    ``OTEL_*`` variables name, and a library reading the same variables
    (dagger-io under ``dagger run``, which sets ``OTEL_TRACES_EXPORTER=otlp``)
    would add a second exporter to the same place.
    """

    _sealed = False

    def seal(self) -> None:
        """Refuse span processors from now on."""
        self._sealed = True

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        """Add ``span_processor`` before :meth:`seal`; after it, shut it down instead."""
        if not self._sealed:
            super().add_span_processor(span_processor)
            return
        logger.debug(
            "refused span processor %s: spans are exported once", type(span_processor).__name__
        )
        span_processor.shutdown()


class Tracing:
    """The tracing of one run: a provider, its hooks, and how to shut it down.

    Made by :func:`start_tracing`.  Pass :attr:`hooks` to the scheduler; the
    provider is flushed and shut down when the run ends (``on_run_end``) and,
    should the run never end, by :meth:`shutdown` (or leaving the ``with``).

    Attributes:
        provider: The SDK tracer provider (exporters and the run store).
        hooks: The pipeline hooks that trace the run.
        parent: The run's parent context taken from ``TRACEPARENT``, if any.
        store: The local run store every span is written to.
    """

    def __init__(
        self,
        provider: TracerProvider,
        *,
        parent: Context | None,
        store: RunStore,
        redactor: Redactor,
    ) -> None:
        self.provider = provider
        self.parent = parent
        self.store = store
        self.hooks = TracingHooks(
            provider, redactor=redactor, parent=parent, after_run=self.shutdown
        )
        self.processes = ProcessSpans(provider, redactor=redactor)
        self._done = False
        self._token: Token[Tracing | None] | None = None
        self._observing = ExitStack()

    def shutdown(self) -> None:
        """Flush every span out (exporters and run store) and stop; safe to call twice."""
        if self._done:
            return
        self._done = True
        self.provider.shutdown()

    def __enter__(self) -> Tracing:
        self._token = _ACTIVE.set(self)
        # every process started inside the run becomes a span (git push, podman build ...)
        self._observing.enter_context(observe_processes(self.processes))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace_: TracebackType | None,
    ) -> None:
        self._observing.close()
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None
        self.shutdown()


def start_tracing(
    *,
    environ: Mapping[str, str] | None = None,
    runs_dir: Path = DEFAULT_ROOT,
    redactor: Redactor | None = None,
    set_global: bool = False,
) -> Tracing:
    """Set up tracing for one run from the ``OTEL_*`` environment.

    Args:
        environ: The environment to read (default ``os.environ``).
        runs_dir: The local run store's directory.
        redactor: Knows the secrets to mask; OTLP header values are added to it.
        set_global: Also install the provider as OpenTelemetry's global one
            (once per process), so libraries' own spans are recorded too.

    Returns:
        The provider, the hooks for the scheduler, and how to shut down.

    Raises:
        ConfigError: An ``OTEL_*`` variable or ``TRACEPARENT`` has a value
            Conveyor cannot use; the message names the variable.
    """
    env = os.environ if environ is None else environ
    redactor = redactor if redactor is not None else Redactor()
    store = RunStore(runs_dir)
    parent = parent_from_env(env)
    provider = tracer_provider_from_env(env, store=store, redactor=redactor)
    if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return Tracing(provider, parent=parent, store=store, redactor=redactor)


def tracer_provider_from_env(
    environ: Mapping[str, str], *, store: RunStore, redactor: Redactor
) -> TracerProvider:
    """A tracer provider with the exporters ``environ`` asks for and the run store.

    Raises:
        ConfigError: An ``OTEL_*`` variable has a value Conveyor cannot use.
    """
    exporters = exporters_from_env(environ, redactor)
    provider = OwnProcessors(
        resource=resource_from_env(environ), sampler=RecordEverything(ParentBased(ALWAYS_ON))
    )
    provider.add_span_processor(RunRecorder(store, redactor))
    for exporter, batch in exporters:
        wrapped = RedactingSpanExporter(exporter, redactor)
        provider.add_span_processor(
            BatchSpanProcessor(wrapped) if batch else SimpleSpanProcessor(wrapped)
        )
    provider.seal()
    return provider


def parent_from_env(environ: Mapping[str, str]) -> Context | None:
    """The context ``TRACEPARENT`` (and ``TRACESTATE``) describe, ``None`` when unset.

    Raises:
        ConfigError: ``TRACEPARENT`` is set but is not a W3C traceparent.
    """
    traceparent = environ.get("TRACEPARENT", "").strip()
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if environ.get("TRACESTATE", "").strip():
        carrier["tracestate"] = environ["TRACESTATE"].strip()
    context = TraceContextTextMapPropagator().extract(carrier, context=Context())
    if not trace.get_current_span(context).get_span_context().is_valid:
        raise ConfigError(
            None,
            "TRACEPARENT",
            f"{traceparent!r} is not a W3C traceparent",
            hint="expected 00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>, "
            "or unset TRACEPARENT",
        )
    return context


def resource_from_env(environ: Mapping[str, str]) -> Resource:
    """``service.name`` from ``OTEL_SERVICE_NAME`` plus ``OTEL_RESOURCE_ATTRIBUTES``.

    Raises:
        ConfigError: ``OTEL_RESOURCE_ATTRIBUTES`` is not a ``k=v,k=v`` list.
    """
    attributes: dict[str, str] = dict(
        _pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES")
    )
    attributes["service.name"] = (
        environ.get("OTEL_SERVICE_NAME", "").strip()
        or attributes.get("service.name")
        or DEFAULT_SERVICE_NAME
    )
    attributes.setdefault("service.version", conveyor.__version__)
    return Resource(attributes)


def exporters_from_env(
    environ: Mapping[str, str], redactor: Redactor
) -> list[tuple[SpanExporter, bool]]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names, each with whether to batch it.

    Raises:
        ConfigError: An unknown exporter or protocol, a bad endpoint or header list,
            or ``grpc`` without its package.
    """
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [n for n in names if n]
    for name in names:
        if name not in EXPORTERS:
            raise ConfigError(
                None,
                "OTEL_TRACES_EXPORTER",
                f"unknown exporter {name!r}",
                hint=f"use one of {', '.join(EXPORTERS)} (or a comma-separated list of them)",
            )
    if "none" in names:
        return []
    exporters: list[tuple[SpanExporter, bool]] = []
    if "otlp" in names:
        exporters.append((otlp_exporter_from_env(environ, redactor), True))
    if "console" in names:
        exporters.append((ConsoleSpanExporter(out=sys.stderr), False))
    return exporters


def otlp_exporter_from_env(environ: Mapping[str, str], redactor: Redactor) -> SpanExporter:
    """The OTLP exporter for the protocol, endpoint and headers in ``environ``.

    Raises:
        ConfigError: An unknown protocol, a bad endpoint or header list, or
            ``grpc`` without its package.
    """
    protocol_var, protocol = _first(
        environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    protocol = (protocol or "http/protobuf").strip().lower()
    headers_var, raw_headers = _first(
        environ, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"
    )
    headers = dict(_pairs(raw_headers or "", headers_var, secret=True))
    for key, value in headers.items():
        redactor.add(Secret(f"otlp header {key}", value))
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        return OTLPSpanExporter(endpoint=_http_endpoint(environ, redactor), headers=headers or None)
    if protocol == "grpc":
        try:
            grpc = importlib.import_module(_GRPC_EXPORTER)
        except ImportError:
            raise ConfigError(
                None,
                protocol_var,
                "'grpc' needs the package opentelemetry-exporter-otlp-proto-grpc, "
                "which is not installed",
                hint="set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (collectors listen on "
                "4318 for it), or pip install opentelemetry-exporter-otlp-proto-grpc",
            ) from None
        _, endpoint = _first(
            environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        exporter: SpanExporter = grpc.OTLPSpanExporter(
            endpoint=endpoint or None, headers=headers or None
        )
        return exporter
    raise ConfigError(
        None,
        protocol_var,
        f"unsupported protocol {protocol!r}",
        hint=f"use one of {', '.join(PROTOCOLS)}",
    )


def _http_endpoint(environ: Mapping[str, str], redactor: Redactor) -> str:
    variable, value = _first(
        environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    value = (value or "").strip()
    if not value:
        return DEFAULT_HTTP_ENDPOINT + TRACES_PATH
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            None,
            variable,
            f"{redactor(value)!r} is not an http(s) URL",
            hint="e.g. http://localhost:4318 (OTEL_EXPORTER_OTLP_ENDPOINT) or "
            "http://localhost:4318/v1/traces (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)",
        )
    if variable == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
        return value
    return value.rstrip("/") + TRACES_PATH


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str | None]:
    """The first of ``names`` that is set (and its value), else the last name and ``None``."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return names[-1], None


def _pairs(text: str, variable: str, *, secret: bool = False) -> list[tuple[str, str]]:
    """Parse the W3C-baggage-like ``k=v,k=v`` list (values percent-decoded)."""
    pairs: list[tuple[str, str]] = []
    for number, item in enumerate(text.split(","), start=1):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            shown = f"entry {number}" if secret else f"entry {number} ({item.strip()!r})"
            raise ConfigError(
                None,
                variable,
                f"{shown} is not of the form key=value",
                hint="write a comma-separated list: key1=value1,key2=value2",
            )
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return pairs


class RecordEverything(Sampler):
    """Record every span; leave the sampled flag to ``inner``.

    Exporters only send sampled spans, while the run store records all of
    them: a parent that said "not sampled" must not leave ``conveyor trace``
    blind.

    Args:
        inner: Decides the sampled flag (the SDK default is parent-based, always on).
    """

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(  # noqa: PLR0917 - the SDK's Sampler signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The inner decision, with "drop" turned into "record only"."""
        result = self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        """Names the sampler and the one it wraps."""
        return f"RecordEverything{{{self.inner.get_description()}}}"
