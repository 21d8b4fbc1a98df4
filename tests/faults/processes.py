"""What a fault left running: processes found by their command line in /proc."""

from __future__ import annotations

import time
from pathlib import Path


def processes_mentioning(text: str) -> list[str]:
    """The command lines of running processes (not zombies) that contain ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(cmdline.strip())
    return found


def none_left(text: str, within: float = 2.0) -> list[str]:
    """Wait up to ``within`` seconds for every process mentioning ``text`` to end; the rest."""
    deadline = time.monotonic() + within
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
