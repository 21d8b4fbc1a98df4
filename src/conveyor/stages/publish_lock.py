"""One publisher per tag on one host: the check and the push of a tag, serialised.

Two pipelines of the same commit on one machine (two CI runners, two image
stores) would otherwise both find the tag absent and both push.  Holding
this lock from the existence check to the read-back after the push, the
second waits, then finds the first one's image under the tag and reuses it.

The lock is an abstract Unix socket (Linux): a name only, no file to leave
behind, released by the kernel when its process dies however it dies.
Where abstract sockets do not exist the lock is skipped.  It orders writers
on one host only: across machines only the registry can refuse a second
writer (tag immutability, see the README's "Guarantees").
"""

from __future__ import annotations

import errno
import hashlib
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

POLL = 0.1
"""Seconds between attempts to take a held lock."""


def lock_name(address: str) -> bytes:
    """The abstract socket name for ``address`` (registry/repository:tag)."""
    return b"\0conveyor-publish-" + hashlib.sha256(address.encode()).hexdigest()[:40].encode()


@asynccontextmanager
async def publish_lock(address: str) -> AsyncIterator[None]:
    """Hold the host-wide lock of ``address`` for the duration of the context.

    Waits (cancellably) while another process holds it.
    """
    if not sys.platform.startswith("linux"):
        yield
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        while True:
            try:
                sock.bind(lock_name(address))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    break  # no abstract sockets here: go on without the lock
                await anyio.sleep(POLL)
        yield
    finally:
        sock.close()
