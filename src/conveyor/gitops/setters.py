"""Flux image-policy setter markers, edited in any YAML file.

Flux's image automation marks the values it may change with a comment::

    image: ghcr.io/acme/app:v1 # {"$imagepolicy": "flux-system:app"}
    tag: v1                    # {"$imagepolicy": "flux-system:app:tag"}
    repository: ghcr.io/acme/app # {"$imagepolicy": "flux-system:app:name"}
    digest: sha256:...         # {"$imagepolicy": "flux-system:app:digest"}

Flux's image automation writes ``name:tag@digest`` into a full marker when
the ImagePolicy reflects digests, the tag alone into ``:tag`` and the digest
into ``:digest`` (image-automation-controller, internal/update/setters.go);
a ``tag@digest`` setter is only a feature request there.  So the digest goes
where the markers allow it: a full marker, a ``:digest`` marker, or - when
the file's chart builds its image as ``repository:tag`` and the configuration
says so (``flux_setters[].tag_digest``) - the ``:tag`` value as
``tag@digest``.  Markers that cannot carry the digest are refused when the
digest is required (``policy.require_digest``), before anything is written.

API:
    ``SetterEdit(policy="flux-system:app", name=..., tag=..., digest=None,
    require_digest=False, tag_digest=False)``;
    ``set_setters(text, edit, path=...) -> str`` rewrites every value marked for
    that policy; unchanged text means nothing to do.  ``SetterEdit`` is an
    editor for :func:`conveyor.gitops.update.update_manifest`
    (``apply``/``current``/``target``): ``current`` is the image the markers
    hold now (the full marker's value, or ``name:tag@digest`` assembled from
    the ``:name``/``:tag``/``:digest`` markers), ``target`` what they hold after.
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
    require_digest: bool = False
    tag_digest: bool = False

    @classmethod
    def pin(
        cls,
        policy: str,
        ref: ImageReference,
        *,
        require_digest: bool = False,
        tag_digest: bool = False,
    ) -> SetterEdit:
        """Setter values from a pushed image reference (name in familiar form)."""
        name = ImageReference(ref.registry, ref.repository).familiar()
        return cls(policy, name, ref.tag, ref.digest, require_digest, tag_digest)

    def value(self, suffix: str | None) -> str | None:
        """What the setter with ``suffix`` (``None`` = full image) must hold."""
        if suffix == "name":
            return self.name
        if suffix == "tag":
            if self.tag_digest and self.digest and self.tag:
                return f"{self.tag}@{self.digest}"
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
        """Editor protocol: the image the markers hold (``None`` if none is marked)."""
        return _held(_marked(text, self.policy, path))

    def target(self, text: str, path: str) -> str:
        """Editor protocol: the image the markers hold after this edit."""
        return self.current(self.apply(text, path), path) or ""


def _held(marked: list[tuple[ScalarNode, str | None]]) -> str | None:
    """The image the marked values say: the full marker's, or assembled from the parts."""
    parts: dict[str | None, str] = {}
    for node, suffix in marked:
        parts.setdefault(suffix, str(node.value))
    if None in parts:
        return parts[None]
    if not parts:
        return None
    text = parts.get("name", "")
    tag = parts.get("tag")
    if tag:
        text += f":{tag}"
    digest = parts.get("digest")
    if digest and "@" not in (tag or ""):
        text += f"@{digest}"
    return text or None


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
        ManifestError: malformed YAML, a marker on a line without a value, or
            markers that cannot carry the digest ``edit.require_digest`` asks for.
    """
    marked = _marked(text, edit.policy, path)
    suffixes = {suffix for _, suffix in marked}
    carries = None in suffixes or "digest" in suffixes or ("tag" in suffixes and edit.tag_digest)
    if marked and edit.digest and not carries and edit.require_digest:
        found = ", ".join(sorted(f":{s}" for s in suffixes if s))
        raise ManifestError(
            path,
            f"the {edit.policy} setters ({found}) cannot hold the digest, and "
            "policy.require_digest is on; nothing was changed",
            hint=f'mark the chart\'s digest value with # {{"$imagepolicy": "{edit.policy}:digest"}}'
            f' or the full image with # {{"$imagepolicy": "{edit.policy}"}}; or set '
            "tag_digest = true on this flux_setters entry if the chart builds repository:tag",
        )
    splices = Splices(text)
    for node, suffix in marked:
        value = edit.value(suffix)
        if value is None or node.value == value:
            continue
        splices.replace(node.start_mark.index, node.end_mark.index, format_scalar(value, node))
    return splices.apply()
