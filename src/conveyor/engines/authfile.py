"""Registry credentials handed to podman and skopeo in a private file.

``--creds USER:PASSWORD`` would put the password in ``argv``, which every
user of the machine can read in ``/proc``.  Instead the credentials are
written, mode 0600, to a temporary ``auth.json`` in the format of
containers-auth.json(5), passed with ``--authfile`` and deleted afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.engines.port import RegistryAuth


def registry_host(address: str) -> str:
    """The registry part of an image address (``host[:port]``).

    Args:
        address: ``registry/repository[:tag][@digest]``.

    Returns:
        The first path component when it looks like a host (has a dot or a
        colon, or is ``localhost``), else ``docker.io``.
    """
    first, _, rest = address.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


@contextmanager
def authfile(address: str, auth: RegistryAuth | None) -> Iterator[list[str]]:
    """The ``--authfile PATH`` arguments for ``address``, or none without ``auth``.

    Args:
        address: The image address; its registry host keys the credentials.
        auth: The credentials, or ``None`` for anonymous access.

    Yields:
        Arguments to add to a podman/skopeo command line; the file they name
        exists (mode 0600) until the context ends.
    """
    if auth is None:
        yield []
        return
    token = base64.b64encode(f"{auth.username}:{auth.password.reveal()}".encode()).decode()
    content = json.dumps({"auths": {registry_host(address): {"auth": token}}})
    with tempfile.TemporaryDirectory(prefix="conveyor-auth-") as directory:
        path = Path(directory) / "auth.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        yield ["--authfile", str(path)]
