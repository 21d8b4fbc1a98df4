"""The local run store: every finished span of a run, one JSON line each.

Layout: ``<root>/<run-id>/spans.jsonl`` (``root`` is ``.conveyor/runs`` by
default).  A span is appended when it ends, so a run that crashed still
leaves the spans that finished; an append is whole or not at all (a full
disk cuts the file back), and a last line cut short by a crash elsewhere is
ignored.  This module knows nothing of OpenTelemetry: a :class:`SpanRecord`
is plain data, which is what ``conveyor trace`` reads back.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from conveyor.atomic import append_whole
from conveyor.errors import RunStoreError

DEFAULT_ROOT = Path(".conveyor") / "runs"
SPANS_FILE = "spans.jsonl"
RUN_SPAN = "conveyor.run"

AttributeValue: TypeAlias = (
    "str | bool | int | float | tuple[AttributeValue, ...] | dict[str, AttributeValue] | None"
)
"""An attribute value as JSON holds it (sequences as tuples, bytes as hex)."""

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def find_root(start: Path) -> Path:
    """The nearest ``.conveyor/runs`` at or above ``start`` (``start/.conveyor/runs`` if none).

    Runs are recorded next to ``conveyor.toml``, so this finds them from any
    directory of the project, as git finds ``.git``.
    """
    for directory in (start, *start.parents):
        if (directory / DEFAULT_ROOT).is_dir():
            return directory / DEFAULT_ROOT
    return start / DEFAULT_ROOT


@dataclass(frozen=True)
class SpanEvent:
    """Something that happened during a span (an exception, a log line)."""

    name: str
    time: int
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class SpanRecord:
    """One finished span as plain data.

    Attributes:
        name: The span's name (``conveyor.run``, ``stage build``, ``attempt 1`` ...).
        trace_id: 32 hex digits.
        span_id: 16 hex digits.
        parent_id: The parent span's id, ``None`` for a root span.
        start: Start time, nanoseconds since the epoch.
        end: End time, nanoseconds since the epoch.
        status: ``"unset"``, ``"ok"`` or ``"error"``.
        status_message: Why the span failed ("" otherwise).
        attributes: The span's attributes.
        events: The span's events, oldest first.
    """

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: int
    end: int
    status: str = "unset"
    status_message: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()

    @property
    def duration(self) -> int:
        """Nanoseconds from start to end."""
        return max(0, self.end - self.start)

    def to_json(self) -> str:
        """The record as one line of JSON."""
        data = {
            "name": self.name,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "status_message": self.status_message,
            "attributes": dict(self.attributes),
            "events": [
                {"name": e.name, "time": e.time, "attributes": dict(e.attributes)}
                for e in self.events
            ],
        }
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> SpanRecord:
        """Parse a line written by :meth:`to_json`.

        Raises:
            ValueError: The line is not JSON or misses a field.
        """
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            return cls(
                name=str(data["name"]),
                trace_id=str(data["trace_id"]),
                span_id=str(data["span_id"]),
                parent_id=None if data["parent_id"] is None else str(data["parent_id"]),
                start=int(data["start"]),
                end=int(data["end"]),
                status=str(data.get("status", "unset")),
                status_message=str(data.get("status_message", "")),
                attributes=_attributes(data.get("attributes", {})),
                events=tuple(
                    SpanEvent(str(e["name"]), int(e["time"]), _attributes(e.get("attributes", {})))
                    for e in data.get("events", [])
                ),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"missing or malformed field {error}") from None


def _attributes(raw: Any) -> dict[str, AttributeValue]:
    if not isinstance(raw, dict):
        raise TypeError("attributes")
    return {str(key): _value(value) for key, value in raw.items()}


def _value(raw: Any) -> AttributeValue:
    if raw is None or isinstance(raw, str | bool | int | float):
        return raw
    if isinstance(raw, list):
        return tuple(_value(item) for item in raw)
    if isinstance(raw, dict):
        return _attributes(raw)
    raise TypeError(f"attribute value {raw!r}")


@dataclass(frozen=True)
class Run:
    """One run's spans, in the order they finished."""

    run_id: str
    spans: tuple[SpanRecord, ...]

    @property
    def root(self) -> SpanRecord | None:
        """The ``conveyor.run`` span (``None`` while the run has not finished)."""
        for span in self.spans:
            if span.name == RUN_SPAN and span.attributes.get("conveyor.run.id") == self.run_id:
                return span
        return None

    @property
    def started(self) -> int:
        """When the run began, nanoseconds since the epoch (0 without spans)."""
        root = self.root
        if root is not None:
            return root.start
        return min((s.start for s in self.spans), default=0)

    @property
    def duration(self) -> int:
        """Wall time in nanoseconds, from the first span's start to the last span's end."""
        if not self.spans:
            return 0
        return max(s.end for s in self.spans) - min(s.start for s in self.spans)

    @property
    def status(self) -> str:
        """The run's ``conveyor.status`` (``unfinished`` when its span never ended)."""
        root = self.root
        if root is None:
            return "unfinished"
        return str(root.attributes.get("conveyor.status", root.status))


class RunStore:
    """Runs under ``root``, one directory per run id.

    Args:
        root: The store's directory (created on first write).
    """

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self._lock = threading.Lock()
        self.failures: list[str] = []
        """What could not be recorded during this process (``note_failure``)."""

    def path(self, run_id: str) -> Path:
        """The span file of ``run_id``.

        Raises:
            RunStoreError: ``run_id`` is not usable as a directory name.
        """
        if not _RUN_ID.match(run_id):
            raise RunStoreError(
                self.root,
                f"run id {run_id!r} is not a valid directory name",
                hint="use letters, digits, '.', '_' and '-' only",
            )
        return self.root / run_id / SPANS_FILE

    def write(self, run_id: str, records: Iterable[SpanRecord]) -> None:
        """Append ``records`` to the run's span file (safe from several threads).

        Raises:
            RunStoreError: ``run_id`` is not a valid directory name.
            OSError: The file cannot be written.
        """
        path = self.path(run_id)
        text = "".join(record.to_json() + "\n" for record in records)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            append_whole(path, text)  # a full disk leaves no torn line

    def prepare(self, run_id: str) -> Path:
        """Create the run's directory (and ``artifacts/`` in it); check it can be written.

        Called before any stage runs, so that a store that cannot be written
        stops the run at once instead of failing its bookkeeping at the end.

        Returns:
            The run's directory.

        Raises:
            RunStoreError: the directory cannot be created or written (read-only,
                not a directory, no permission).
        """
        directory = self.path(run_id).parent
        try:
            (directory / "artifacts").mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as error:
            raise RunStoreError(
                self.root,
                f"cannot be written: {error.strerror or error}",
                hint="make .conveyor/runs (next to conveyor.toml) writable, "
                "or run from a writable checkout",
            ) from None
        return directory

    def note_failure(self, what: str, error: OSError) -> None:
        """Remember that ``what`` could not be recorded (the run reports it once, at its end)."""
        with self._lock:
            self.failures.append(f"{what}: {error.strerror or error}")

    def run_ids(self) -> list[str]:
        """Every run id in the store, in no particular order."""
        if not self.root.is_dir():
            return []
        return [p.parent.name for p in self.root.glob(f"*/{SPANS_FILE}") if p.is_file()]

    def load(self, run: str) -> Run:
        """The run whose id is ``run`` or starts with it.

        Raises:
            RunStoreError: No run, or several runs, match; or its span file is corrupt.
        """
        ids = self.run_ids()
        if run in ids:
            return self._read(run)
        matches = sorted(i for i in ids if i.startswith(run))
        if not matches:
            raise RunStoreError(
                self.root,
                f"no run matches {run!r}",
                hint="list the recorded runs with 'conveyor trace list'",
            )
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
            raise RunStoreError(
                self.root,
                f"{len(matches)} runs match {run!r}: {shown}",
                hint="give more characters of the run id",
            )
        return self._read(matches[0])

    def runs(self) -> list[Run]:
        """Every run, newest first.

        Raises:
            RunStoreError: A span file is corrupt.
        """
        runs = [self._read(run_id) for run_id in self.run_ids()]
        return sorted(runs, key=lambda r: (r.started, r.run_id), reverse=True)

    def latest(self) -> Run:
        """The newest run.

        Raises:
            RunStoreError: The store holds no run.
        """
        runs = self.runs()
        if not runs:
            raise RunStoreError(
                self.root,
                "no runs recorded yet",
                hint="run 'conveyor run' first, or point --dir at another run store",
            )
        return runs[0]

    def _read(self, run_id: str) -> Run:
        path = self.path(run_id)
        lines = path.read_text(encoding="utf-8").splitlines()
        records: list[SpanRecord] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(SpanRecord.from_json(line))
            except ValueError as error:
                if number == len(lines):
                    break  # a write cut short by a crash: keep what finished
                raise RunStoreError(
                    path,
                    f"line {number} is not a span record ({error})",
                    hint="the file was edited or damaged; delete the run's directory",
                ) from None
        return Run(run_id, tuple(records))
