"""Small real filesystems for fault tests: a full disk and a read-only one (tests run as root).

``tmpfs(path, size)`` mounts a tmpfs of ``size`` bytes at ``path`` (a
directory it creates) and unmounts it afterwards; ``fill(path, leave)``
fills it up to ``leave`` free bytes.  No loop device, no image file: tmpfs
counts its size in 4 KiB pages, which is enough to fill a disk exactly.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE = 4096


@contextmanager
def tmpfs(path: Path, size: int = 16 * PAGE, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted at ``path`` for the ``with`` block."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {path} (tests run as root): {mounted.stderr}")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill(path: Path, leave: int = 0) -> Path:
    """Fill the filesystem holding ``path`` until ``leave`` bytes (whole pages) are free."""
    stats = os.statvfs(path)
    free = stats.f_bavail * stats.f_frsize
    filler = path / "filler"
    with filler.open("wb") as file:
        file.write(b"\0" * max(0, free - leave))
    return filler
