"""Durations written as ``90``, ``"90s"``, ``"5m"``, ``"1h30m"`` or ``"250ms"``."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
LONGEST = 7 * 24 * 3600.0
"""A week: longer than any CI job may run; more is a typo (or ``inf``), not a wish."""


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string.

    Raises:
        ValueError: the text is not a duration, or it is not positive, not finite or
            longer than :data:`LONGEST`; the message shows the forms accepted.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, '30s', '5m' or '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text or _PART.sub("", text):
            raise ValueError(f"{value!r} is not a duration; use e.g. 30, '30s', '5m' or '1h30m'")
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError("expected a duration such as 30, '30s', '5m' or '1h30m'")
    if math.isnan(seconds):
        raise ValueError("nan is not a duration; use e.g. 30, '30s', '5m' or '1h30m'")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > LONGEST:
        raise ValueError("a duration must be at most a week ('168h')")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
