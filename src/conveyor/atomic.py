"""Run files written whole or not at all: the one way Conveyor writes what a run records.

``write_atomically`` writes a temporary file in the same directory, fsyncs
it and renames it over the target, so a reader (or a crash, or a full disk)
sees the old file or the new one, never a part.  ``append_whole`` appends a
block of lines (span records) and, when the disk fills midway, cuts the file
back to where it was, so no line is ever torn.  Both raise ``OSError``; the
callers decide whether that is an error or a warning.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step.

    Raises:
        OSError: the directory cannot be written or the disk is full; ``path``
            is then as it was and no temporary file is left.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = path.stat().st_mode & 0o777  # a replaced file keeps its mode
    except OSError:
        mode = 0o644  # a report others (CI artifact upload) read, not mkstemp's 0600
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_directory(path.parent)


def append_whole(path: Path, data: bytes | str) -> None:
    """Append ``data`` to ``path`` (created if missing) entirely, or not at all.

    Callers serialise appends to one file (the run store holds a lock).

    Raises:
        OSError: the write failed; the file is cut back to its size before.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
