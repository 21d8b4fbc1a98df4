"""A link to the run's trace in an engine's own trace viewer (Dagger Cloud), safe to show.

The Dagger engine answers ``Cloud.traceURL`` with
``https://dagger.cloud/<organization>/traces/<trace id>`` when its session
belongs to a Dagger Cloud organization, and with an error when it does not
(:meth:`conveyor.engines.dagger.DaggerEngine.trace_url`).  Whatever the
engine said, a link reaches summary.json, the run span and the CI summaries
only through :func:`shown_trace_url`: an ``https`` URL of a host and a plain
path, without user information, query or fragment (where tokens travel), and
containing no secret the run knows.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from conveyor.secrets import Redactor

_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
_PATH = re.compile(r"[A-Za-z0-9._~/-]*")

SUMMARY_KEY = "trace_url"
"""The key of summary.json that holds the link, when there is one."""

RUN_OUTPUT = "run.trace_url"
"""The report stage's output that holds it: ``run.`` outputs are run span attributes."""


def shown_trace_url(text: str | None, redactor: Redactor | None = None) -> str | None:
    """``text`` when it is a trace link that is safe to show, else ``None``.

    Args:
        text: What the engine answered (``None``: it had no link).
        redactor: Knows the run's secrets; a link that contains one is refused.
    """
    link = (text or "").strip()
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    safe = (
        parts.scheme == "https"
        and _HOST.fullmatch(parts.netloc) is not None
        and _PATH.fullmatch(parts.path) is not None
        # no query or fragment, not even an empty one: where tokens travel
        and "?" not in link
        and "#" not in link
        and (redactor is None or redactor(link) == link)
    )
    return link if safe else None
