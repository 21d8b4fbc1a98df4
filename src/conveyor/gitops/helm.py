"""Helm ``values.yaml`` image blocks, edited at a key path.

A chart usually reads its image from a block like::

    image:
      repository: ghcr.io/acme/app
      tag: "3f2a..."   # set by CI
      digest: sha256:...

API:
    ``ValuesEdit(key_path=("image",), repository=..., tag=..., digest=...)``;
    ``set_values_image(text, edit, path=...) -> str`` sets the given fields of
    the mapping at ``key_path`` (a field left ``None`` is not touched, a missing
    key is added at the end of the block); unchanged text means nothing to do.
    ``ValuesEdit`` is an editor for :func:`conveyor.gitops.update.update_manifest`.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.errors import ManifestError
from conveyor.gitops.yamltext import (
    MappingNode,
    ScalarNode,
    Splices,
    compose,
    format_scalar,
    line_ending,
    mapping_get,
    scalar_text,
)

_FIELDS = ("repository", "tag", "digest")


@dataclass(frozen=True)
class ValuesEdit:
    """Fields of the image block at ``key_path`` (e.g. ``("backend", "image")``)."""

    key_path: tuple[str, ...] = ("image",)
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None

    def apply(self, text: str, path: str) -> str:
        """Editor protocol."""
        return set_values_image(text, self, path=path)

    def current(self, text: str, path: str) -> str | None:
        """Editor protocol: ``repository:tag@digest`` as the file has it."""
        block = _block(text, self.key_path, path)
        values = {
            key: scalar_text(pair[1], path, ".".join((*self.key_path, key)))
            for key in _FIELDS
            if (pair := mapping_get(block, key)) is not None
        }
        return _format(values.get("repository"), values.get("tag"), values.get("digest"))

    def target(self, text: str, path: str) -> str:
        """Editor protocol: the value after this edit."""
        return _format(
            *(
                getattr(self, key) if getattr(self, key) is not None else part
                for key, part in zip(_FIELDS, _split(self.current(text, path)), strict=True)
            )
        )


def _format(repository: str | None, tag: str | None, digest: str | None) -> str:
    text = repository or ""
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    return text


def _split(value: str | None) -> tuple[str | None, str | None, str | None]:
    if not value:
        return None, None, None
    rest, _, digest = value.partition("@")
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        return rest[:colon] or None, rest[colon + 1 :], digest or None
    return rest or None, None, digest or None


def _block(text: str, key_path: tuple[str, ...], path: str) -> MappingNode:
    roots = compose(text, path)
    if len(roots) != 1 or not isinstance(roots[0], MappingNode):
        raise ManifestError(
            path, "is not a single YAML mapping", hint="values files are one mapping"
        )
    node: MappingNode = roots[0]
    for depth, key in enumerate(key_path):
        pair = mapping_get(node, key)
        dotted = ".".join(key_path[: depth + 1])
        if pair is None:
            raise ManifestError(
                path,
                f"has no {dotted}",
                hint=f"add the {'.'.join(key_path)} block to the chart values",
            )
        if not isinstance(pair[1], MappingNode) or pair[1].flow_style:
            raise ManifestError(path, f"{dotted} is not a block mapping")
        node = pair[1]
    return node


def set_values_image(text: str, edit: ValuesEdit, *, path: str = "values.yaml") -> str:
    """Set repository/tag/digest of the image block at ``edit.key_path``.

    Raises:
        ManifestError: malformed YAML, or no block mapping at the key path.
    """
    block = _block(text, edit.key_path, path)
    eol = line_ending(text)
    splices = Splices(text)
    indent = " " * block.value[0][0].start_mark.column if block.value else "  "
    added: list[str] = []
    for key in _FIELDS:
        value = getattr(edit, key)
        if value is None:
            continue
        pair = mapping_get(block, key)
        if pair is None:
            added.append(f"{indent}{key}: {format_scalar(value)}")
            continue
        node = pair[1]
        if not isinstance(node, ScalarNode) or node.style in ("|", ">"):
            raise ManifestError(path, f"{'.'.join((*edit.key_path, key))} must be a one-line value")
        if scalar_text(node, path, key) == value:
            continue
        like = node if node.value != "" or node.style else None
        new = format_scalar(value, like)
        if node.start_mark.index == node.end_mark.index and text[node.start_mark.index - 1] == ":":
            new = " " + new
        splices.replace(node.start_mark.index, node.end_mark.index, new)
    if added:
        last = block.value[-1][1]
        splices.insert_line(
            max(last.end_mark.index - 1, last.start_mark.index), eol.join(added), eol
        )
    return splices.apply()
