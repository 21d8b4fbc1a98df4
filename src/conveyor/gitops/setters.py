"""Flux image-policy setter markers, edited in any YAML file.

Flux's image automation marks the values it may change with a comment::

    image: ghcr.io/acme/app:v1 # {"$imagepolicy": "flux-system:app"}
    tag: v1                    # {"$imagepolicy": "flux-system:app:tag"}
    repository: ghcr.io/acme/app # {"$imagepolicy": "flux-system:app:name"}
    digest: sha256:...         # {"$imagepolicy": "flux-system:app:digest"}

API:
    ``SetterEdit(policy="flux-system:app", name=..., tag=..., digest=None)``;
    ``set_setters(text, edit, path=...) -> str`` rewrites every value marked for
    that policy (full marker: ``name:tag`` or ``name:tag@digest``); unchanged
    text means nothing to do.  ``SetterEdit`` is an editor for
    :func:`conveyor.gitops.update.update_manifest` (``apply``/``current``/``target``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.errors import ManifestError
from conveyor.gitops.yamltext import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    Splices,
    compose,
    format_scalar,
)
from conveyor.policy.reference import ImageReference

_MARKER = re.compile(r'#\s*\{\s*"\$imagepolicy"\s*:\s*"(?P<policy>[^"]+)"\s*\}')
_SUFFIXES = ("tag", "name", "digest")


@dataclass(frozen=True)
class SetterEdit:
    """Values for the setters of one Flux ImagePolicy (``namespace:name``)."""

    policy: str
    name: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def pin(cls, policy: str, ref: ImageReference) -> SetterEdit:
        """Setter values from a pushed image reference (name in familiar form)."""
        name = ImageReference(ref.registry, ref.repository).familiar()
        return cls(policy, name, ref.tag, ref.digest)

    def value(self, suffix: str | None) -> str | None:
        """What the setter with ``suffix`` (``None`` = full image) must hold."""
        if suffix == "name":
            return self.name
        if suffix == "tag":
            return self.tag
        if suffix == "digest":
            return self.digest
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def apply(self, text: str, path: str) -> str:
        """Editor protocol: the text with every marked value set."""
        return set_setters(text, self, path=path)

    def current(self, text: str, path: str) -> str | None:
        """Editor protocol: the full setter's value (or ``None`` if there is none)."""
        for node, suffix in _marked(text, self.policy, path):
            if suffix is None:
                return str(node.value)
        return None

    def target(self, text: str, path: str) -> str:
        """Editor protocol: the full image value this edit sets."""
        return self.value(None) or ""


def _value_scalars(node: Node) -> list[ScalarNode]:
    found: list[ScalarNode] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, MappingNode):
            stack.extend(value for _, value in current.value)
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, ScalarNode):
            found.append(current)
    return found


def _marked(text: str, policy: str, path: str) -> list[tuple[ScalarNode, str | None]]:
    by_line: dict[int, ScalarNode] = {}
    for root in compose(text, path):
        for scalar in _value_scalars(root):
            if scalar.start_mark.line == scalar.end_mark.line:
                by_line[scalar.start_mark.line] = scalar
    lines = text.splitlines()
    found: list[tuple[ScalarNode, str | None]] = []
    for number, line in enumerate(lines):
        match = _MARKER.search(line)
        if not match:
            continue
        marked_policy, _, suffix = match["policy"].partition(":")
        name, _, suffix = suffix.partition(":")
        if f"{marked_policy}:{name}" != policy:
            continue
        if suffix and suffix not in _SUFFIXES:
            raise ManifestError(
                path,
                f"line {number + 1}: setter suffix {suffix!r} is not one of {', '.join(_SUFFIXES)}",
            )
        marked = by_line.get(number)
        if marked is None or marked.end_mark.column > match.start():
            raise ManifestError(
                path, f"line {number + 1}: the {policy} setter marks no value on its line"
            )
        found.append((marked, suffix or None))
    return found


def set_setters(text: str, edit: SetterEdit, *, path: str = "values.yaml") -> str:
    """Rewrite every value marked with ``edit.policy``'s setter.

    Raises:
        ManifestError: malformed YAML, or a marker on a line without a value.
    """
    splices = Splices(text)
    for node, suffix in _marked(text, edit.policy, path):
        value = edit.value(suffix)
        if value is None or node.value == value:
            continue
        splices.replace(node.start_mark.index, node.end_mark.index, format_scalar(value, node))
    return splices.apply()
