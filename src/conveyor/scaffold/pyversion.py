"""The Python image: the lowest official ``python:X.Y-slim`` that ``requires-python`` allows.

A small reading of PEP 440 specifiers (``>=3.11``, ``~=3.12``, ``>=3.10,<3.13``,
``==3.12.*``, ``!=3.11``), enough for ``requires-python``; ``packaging`` is
not a dependency of Conveyor and only minor versions matter here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Minor versions with an official ``python:X.Y-slim`` image, oldest first.
OFFICIAL = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT = "3.12"
_CLAUSE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>|===)\s*([0-9]+(?:\.[0-9]+)*)(\.\*)?\s*$")


@dataclass(frozen=True)
class PythonImage:
    """The image, and why it was chosen (a comment in the generated file)."""

    image: str
    reason: str
    todo: str | None = None


def python_image(requires_python: str | None) -> PythonImage:
    """``python:X.Y-slim`` for the lowest official X.Y that ``requires_python`` allows."""
    if not requires_python:
        return PythonImage(f"python:{DEFAULT}-slim", "no requires-python in pyproject.toml")
    clauses = [_CLAUSE.match(part) for part in requires_python.split(",")]
    if not all(clauses):
        return PythonImage(
            f"python:{DEFAULT}-slim",
            f"requires-python {requires_python!r} was not understood",
            todo=f"requires-python {requires_python!r} was not understood: check the "
            f"python:{DEFAULT}-slim images in conveyor.toml",
        )
    for minor in OFFICIAL:
        if all(_allows(match, minor) for match in clauses if match):
            return PythonImage(
                f"python:{minor}-slim",
                f"requires-python {requires_python!r}: the lowest version it allows",
            )
    return PythonImage(
        f"python:{OFFICIAL[-1]}-slim",
        f"requires-python {requires_python!r} allows none of {', '.join(OFFICIAL)}",
        todo=f"requires-python {requires_python!r} allows no official Python image Conveyor "
        f"knows ({', '.join(OFFICIAL)}): set the python images in conveyor.toml",
    )


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _allows(clause: re.Match[str], minor: str) -> bool:
    """Whether some release of ``minor`` (X.Y.0 and later) satisfies ``clause``."""
    op, raw, wildcard = clause.group(1), clause.group(2), clause.group(3)
    wanted = _version(raw)
    have = _version(minor)
    prefix = wanted[:2]
    if op in ("==", "===") or (op == "!=" and wildcard):
        same = have == prefix if len(wanted) >= 2 else have[:1] == wanted
        return same if op != "!=" else not same
    if op == "!=":
        return True  # one excluded release leaves the others of the minor version
    if op == "~=":
        upper = (*wanted[:-2], wanted[-2] + 1) if len(wanted) > 2 else (wanted[0] + 1,)
        return prefix <= have < upper[:2] if len(wanted) > 2 else wanted <= have < upper
    # a minor version is allowed when one of its releases (X.Y.0 ... X.Y.99) is
    lowest, highest = (*have, 0), (*have, 99)
    padded = wanted + (0,) * (3 - len(wanted))
    return {
        ">=": highest >= padded,
        ">": highest > padded,
        "<=": lowest <= padded,
        "<": lowest < padded,
    }[op]
