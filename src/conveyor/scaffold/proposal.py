"""What ``conveyor init`` proposes beyond the built-in stages, and its TOML text.

A proposal is a value (``ProposedStage``, ``ProposedService``); ``stage_toml``
writes one as a ``[stages.<name>]`` table with its comments. Strings are
written as JSON strings, which are valid TOML basic strings.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class ProposedService:
    """A service container beside a stage (``services = [{ ... }]``).

    ``notes`` are comment lines written above the entry (values not copied).
    """

    name: str
    image: str
    port: int
    env: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProposedStage:
    """A custom stage ``conveyor init`` writes: what was found, and the command that checks it."""

    name: str
    detected: str
    image: str
    #: The line ``conveyor graph`` and ``plan`` show for it.
    description: str = ""
    command: tuple[str, ...] | None = None
    script: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    services: tuple[ProposedService, ...] = ()
    junit: str | None = None
    notes: tuple[str, ...] = ()
    #: Services found that could not be proposed, one comment line each.
    left_out: tuple[str, ...] = field(default=())


def comment_lines(text: str, width: int = 94) -> list[str]:
    """``text`` cut into lines that fit a comment (``# `` in front)."""
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def quote(value: str) -> str:
    """``value`` as a JSON string: valid as a TOML basic string and a YAML scalar."""
    return json.dumps(value)


def key(name: str) -> str:
    """A TOML key: bare when it can be, else quoted."""
    return name if _BARE_KEY.match(name) else quote(name)


def array(values: Sequence[str]) -> str:
    """A one-line TOML array of strings."""
    return "[" + ", ".join(quote(v) for v in values) + "]"


def inline_table(pairs: Sequence[tuple[str, str]]) -> str:
    """A one-line TOML inline table of strings."""
    return "{ " + ", ".join(f"{key(k)} = {quote(v)}" for k, v in pairs) + " }"


def service_toml(service: ProposedService) -> str:
    """One entry of a ``services`` array, with its notes above it."""
    lines = [f"  # {line}" for note in service.notes for line in comment_lines(note)]
    entry = f"name = {quote(service.name)}, image = {quote(service.image)}, port = {service.port}"
    if service.env:
        entry += f", env = {inline_table(service.env)}"
    if service.command:
        entry += f", command = {array(service.command)}"
    lines.append(f"  {{ {entry} }},")
    return "\n".join(lines)


def stage_toml(stage: ProposedStage) -> str:
    """The ``[stages.<name>]`` table of ``stage``, ending with a newline."""
    lines = [f"[stages.{key(stage.name)}]", f"# Detected: {stage.detected}"]
    lines += [f"# {line}" for note in stage.notes for line in comment_lines(note)]
    if stage.description:
        lines.append(f"description = {quote(stage.description)}")
    lines.append(f"image = {quote(stage.image)}")
    if stage.command is not None:
        lines.append(f"command = {array(stage.command)}")
    if stage.script is not None:
        lines.append(f"script = {quote(stage.script)}")
    if stage.junit:
        lines.append(f"junit = {quote(stage.junit)}")
    if stage.env:
        lines.append(f"env = {inline_table(stage.env)}")
    if stage.services:
        lines.append("services = [")
        lines += [service_toml(service) for service in stage.services]
        lines.append("]")
    lines += [f"# {line}" for note in stage.left_out for line in comment_lines(note)]
    return "\n".join(lines) + "\n"
