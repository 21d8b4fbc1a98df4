"""Tracing a run with OpenTelemetry, and the local run store ``conveyor trace`` reads.

Modules: ``tracing`` (the pipeline hooks), ``setup`` (a provider from the
``OTEL_*`` environment), ``recorder`` and ``store`` (spans as JSON lines under
``.conveyor/runs``), ``redaction`` (no secret leaves in a span) and
``waterfall`` (the terminal view).  Nothing is imported here, so that
``conveyor --help`` does not load OpenTelemetry.
"""
