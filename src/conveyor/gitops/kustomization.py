"""``kustomize edit set image`` as a pure text function.

API:
    ``ImageEdit(name, new_name=None, new_tag=None, digest=None)`` is one
    ``images:`` entry to set; ``ImageEdit.parse("NAME=NEWNAME:TAG@DIGEST")``
    reads kustomize's argument forms (``NAME:TAG``, ``NAME@DIGEST``,
    ``NAME=NEWNAME``, ``NAME=NEWNAME:TAG@DIGEST``; ``*`` keeps a field as it is)
    and ``ImageEdit.pin(name, ref)`` builds one from a pushed image reference.
    ``set_image(text, edit, path=...) -> str`` returns the new kustomization
    text; unchanged text means there was nothing to do.  Like kustomize, the
    entry becomes exactly the given fields (a field left ``None`` is removed,
    ``*`` keeps the file's value); the entry, or the whole ``images:`` block,
    is added when missing.  ``read_images(text, path)`` and
    ``find_image(text, name, path)`` read entries; ``kustomization_file(dir)``
    finds the file kustomize would read.

Only the bytes of the touched entry change (see :mod:`.yamltext`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from conveyor.errors import InvalidReferenceError, ManifestError
from conveyor.gitops.yamltext import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    Splices,
    compose,
    format_scalar,
    is_null,
    line_end,
    line_ending,
    line_start,
    mapping_get,
    scalar_text,
)
from conveyor.policy.reference import ImageReference

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
PRESERVE = "*"
FIELDS = (("newName", "new_name"), ("newTag", "new_tag"), ("digest", "digest"))

_TAG_PATTERN = re.compile(r"^(.*):([a-zA-Z0-9._-]*|\*)$")
_NAME = re.compile(r"[^\s#=@'\"{}\[\],]+")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_USAGE = "expected NAME=NEWNAME[:TAG][@DIGEST], NAME:TAG or NAME@DIGEST"


@dataclass(frozen=True)
class ImageEntry:
    """One entry of a kustomization's ``images:`` list, as the file has it."""

    name: str
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None

    def format(self) -> str:
        """The image the entry produces: ``newName|name[:newTag][@digest]``."""
        text = self.new_name or self.name
        if self.new_tag:
            text += f":{self.new_tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class ImageEdit:
    """Set one ``images:`` entry; ``apply``/``current`` make it an editor for updates."""

    name: str
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        spec = self.spec()
        if not _NAME.fullmatch(self.name):
            raise InvalidReferenceError(spec, f"image name {self.name!r} is not valid; {_USAGE}")
        if self.new_name not in (None, PRESERVE) and not _NAME.fullmatch(self.new_name):
            raise InvalidReferenceError(spec, f"new name {self.new_name!r} is not valid")
        if self.new_tag not in (None, PRESERVE) and not _TAG.fullmatch(self.new_tag):
            raise InvalidReferenceError(spec, f"tag {self.new_tag!r} is not valid")
        if self.digest not in (None, PRESERVE) and not _DIGEST.fullmatch(self.digest):
            raise InvalidReferenceError(spec, f"digest {self.digest!r} is not 'algorithm:hex'")

    @classmethod
    def parse(cls, spec: str) -> ImageEdit:
        """Read a ``kustomize edit set image`` argument.

        Raises:
            InvalidReferenceError: the argument has none of kustomize's forms.
        """
        parts = spec.split("=")
        if len(parts) == 2:
            name, (new_name, tag, digest) = parts[0], _overwrite(spec, parts[1], True)
            return cls(name, new_name or None, tag, digest)
        if len(parts) > 2:
            raise InvalidReferenceError(spec, _USAGE)
        name, tag, digest = _overwrite(spec, spec, False)
        return cls(name, None, tag, digest)

    @classmethod
    def pin(cls, name: str, ref: ImageReference) -> ImageEdit:
        """The entry pointing ``name`` at a pushed image (registry/repository, tag, digest)."""
        return cls(name, ref.name, ref.tag, ref.digest)

    def spec(self) -> str:
        """The edit as kustomize's argument text."""
        text = self.name
        if self.new_name:
            text += f"={self.new_name}"
        if self.new_tag:
            text += f":{self.new_tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def resolve(self, existing: ImageEntry | None) -> ImageEntry:
        """The entry this edit leaves in a file that has ``existing``."""

        def pick(ours: str | None, theirs: str | None) -> str | None:
            return theirs if ours == PRESERVE else ours

        before = existing or ImageEntry(self.name)
        return ImageEntry(
            self.name,
            pick(self.new_name, before.new_name),
            pick(self.new_tag, before.new_tag),
            pick(self.digest, before.digest),
        )

    def apply(self, text: str, path: str) -> str:
        """Editor protocol: the text with this entry set."""
        return set_image(text, self, path=path)

    def current(self, text: str, path: str) -> str | None:
        """Editor protocol: the value the file has now for this image (``None``: no entry)."""
        entry = find_image(text, self.name, path)
        return None if entry is None else entry.format()

    def target(self, text: str, path: str) -> str:
        """Editor protocol: the value this edit sets in ``text``."""
        return self.resolve(find_image(text, self.name, path)).format()


def _overwrite(spec: str, arg: str, with_name: bool) -> tuple[str, str | None, str | None]:
    digest: str | None = None
    if "@" in arg:
        arg, _, digest = arg.partition("@")
    match = _TAG_PATTERN.match(arg)
    if match and "/" not in match.group(2):
        return match.group(1), match.group(2) or None, digest
    if digest is not None or (arg and with_name):
        return arg, None, digest
    raise InvalidReferenceError(spec, _USAGE)


def kustomization_file(directory: Path) -> Path:
    """The kustomization file kustomize reads in ``directory``.

    Raises:
        ManifestError: there is none (or more than one).
    """
    found = [directory / n for n in KUSTOMIZATION_NAMES if (directory / n).is_file()]
    if not found:
        hint = "check the environment's path in gitops.environments"
        if not directory.is_dir():
            raise ManifestError(directory, "directory does not exist", hint=hint)
        raise ManifestError(directory, f"has no {', '.join(KUSTOMIZATION_NAMES)}", hint=hint)
    if len(found) > 1:
        raise ManifestError(
            directory,
            f"has more than one kustomization file ({', '.join(p.name for p in found)})",
            hint="keep one, as kustomize itself refuses this",
        )
    return found[0]


def _root(text: str, path: str) -> MappingNode | None:
    """The Kustomization document's root mapping (``None`` for an empty file)."""
    roots = compose(text, path)
    if not roots:
        return None
    mappings = [r for r in roots if isinstance(r, MappingNode)]
    if len(roots) > 1:

        def kind(node: MappingNode) -> str | None:
            pair = mapping_get(node, "kind")
            return None if pair is None else scalar_text(pair[1], path, "kind")

        mappings = [m for m in mappings if kind(m) in ("Kustomization", "Component")]
        if len(mappings) != 1:
            raise ManifestError(
                path,
                f"has {len(roots)} YAML documents and {len(mappings)} of them is a "
                "Kustomization; expected exactly one",
                hint="keep one 'kind: Kustomization' document in the file",
            )
    if not mappings:
        raise ManifestError(path, "is not a YAML mapping", hint="a kustomization is a mapping")
    return mappings[0]


def _images(root: MappingNode | None, path: str) -> tuple[ScalarNode, Node] | None:
    if root is None:
        return None
    pair = mapping_get(root, "images")
    if pair is None:
        return None
    value = pair[1]
    if not (isinstance(value, SequenceNode) or is_null(value)):
        raise ManifestError(path, "images: must be a list of entries", hint="see kustomize docs")
    return pair


def _entry(node: Node, path: str, index: int) -> tuple[MappingNode, ImageEntry]:
    where = f"images[{index}]"
    if not isinstance(node, MappingNode):
        raise ManifestError(path, f"{where} must be a mapping with 'name'")
    values: dict[str, str | None] = {}
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.value in ("name", "newName", "newTag", "digest"):
            values[key.value] = scalar_text(value, path, f"{where}.{key.value}")
    name = values.get("name")
    if not name:
        raise ManifestError(path, f"{where} has no 'name'")
    entry = ImageEntry(name, values.get("newName"), values.get("newTag"), values.get("digest"))
    return node, entry


def _entries(seq: Node, path: str) -> list[tuple[MappingNode, ImageEntry]]:
    if not isinstance(seq, SequenceNode):
        return []
    return [_entry(item, path, i) for i, item in enumerate(seq.value)]


def read_images(text: str, path: str = "kustomization.yaml") -> list[ImageEntry]:
    """Every entry of the ``images:`` list, in file order.

    Raises:
        ManifestError: malformed YAML or a malformed ``images:`` list.
    """
    pair = _images(_root(text, path), path)
    return [] if pair is None else [entry for _, entry in _entries(pair[1], path)]


def find_image(text: str, name: str, path: str = "kustomization.yaml") -> ImageEntry | None:
    """The entry for image ``name``, or ``None``."""
    found = [entry for entry in read_images(text, path) if entry.name == name]
    if len(found) > 1:
        raise ManifestError(path, f"lists image {name!r} {len(found)} times; keep one entry")
    return found[0] if found else None


def _entry_lines(entry: ImageEntry, dash: str, key_indent: str, eol: str) -> str:
    lines = [f"{dash}- name: {format_scalar(entry.name)}"]
    for key, attr in FIELDS:
        value = getattr(entry, attr)
        if value is not None:
            lines.append(f"{key_indent}{key}: {format_scalar(value)}")
    return eol.join(lines) + eol


def _sequence_indent(text: str, root: MappingNode) -> int:
    """How far block lists are indented under their key in this file (0 or 2 usually)."""
    for key, value in root.value:
        if isinstance(value, SequenceNode) and not value.flow_style and value.value:
            first = value.value[0].start_mark
            dash = text.rfind("-", 0, first.index)
            return max(0, dash - text.rfind("\n", 0, dash) - 1 - int(key.start_mark.column))
    return 0


def _last_scalar_end(node: Node) -> int:
    """Index of the last character of the last scalar inside ``node``."""
    while isinstance(node, (MappingNode, SequenceNode)) and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    return max(int(node.end_mark.index) - 1, int(node.start_mark.index))


def _edit_entry(splices: Splices, node: MappingNode, want: ImageEntry, eol: str) -> None:
    text = splices.text
    pairs = list(node.value)
    indent = " " * pairs[0][0].start_mark.column
    wanted = {key: getattr(want, attr) for key, attr in FIELDS}
    present = {k.value for k, _ in pairs if isinstance(k, ScalarNode)}
    removed = [
        isinstance(k, ScalarNode) and k.value in wanted and wanted[k.value] is None
        for k, _ in pairs
    ]
    _remove_runs(splices, pairs, removed)
    for (key_node, value_node), gone in zip(pairs, removed, strict=True):
        if gone or not isinstance(key_node, ScalarNode) or key_node.value not in wanted:
            continue
        value = wanted[key_node.value]
        assert value is not None
        assert isinstance(value_node, ScalarNode)
        if value_node.value == value and not is_null(value_node):
            continue
        if value_node.style in ("|", ">"):
            raise ManifestError("", f"{key_node.value} is a block scalar; write it on one line")
        like = None if is_null(value_node) else value_node
        new = format_scalar(value, like)
        if is_null(value_node) and value_node.start_mark.index == value_node.end_mark.index:
            new = " " + new if text[value_node.start_mark.index - 1] == ":" else new
        splices.replace(value_node.start_mark.index, value_node.end_mark.index, new)
    added = [
        f"{indent}{key}: {format_scalar(value)}"
        for key, value in wanted.items()
        if value is not None and key not in present
    ]
    if added:
        splices.insert_line(_last_scalar_end(pairs[-1][1]), eol.join(added), eol)


def _remove_runs(splices: Splices, pairs: list[tuple[Node, Node]], removed: list[bool]) -> None:
    """Delete each run of consecutive removed keys as one range (never overlapping)."""
    text = splices.text
    i = 0
    while i < len(pairs):
        if not removed[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(pairs) and removed[j + 1]:
            j += 1
        key_start = pairs[i][0].start_mark.index
        start = line_start(text, key_start)
        on_dash_line = text[start:key_start].strip() != ""
        if j + 1 < len(pairs):
            next_key = pairs[j + 1][0].start_mark.index
            if on_dash_line:
                # '- newTag: x\n  name: a' -> '- name: a': keep the dash, pull the next key up
                splices.replace(key_start, next_key, "")
            else:
                splices.replace(start, line_start(text, next_key), "")
        else:
            splices.replace(start, line_end(text, _last_scalar_end(pairs[j][1])), "")
        i = j + 1


def set_image(text: str, edit: ImageEdit, *, path: str = "kustomization.yaml") -> str:
    """Set ``edit`` in a kustomization's ``images:`` list.

    Args:
        text: The kustomization file's text.
        edit: The entry to set.
        path: The file's path, for error messages.

    Returns:
        The new text; equal to ``text`` when the entry already says the same.

    Raises:
        ManifestError: malformed YAML, not a Kustomization, or an ``images:``
            list this editor cannot change without rewriting it (flow style).
    """
    root = _root(text, path)
    eol = line_ending(text)
    splices = Splices(text)
    pair = _images(root, path)
    existing = _entries(pair[1], path) if pair is not None else []
    matches = [(node, entry) for node, entry in existing if entry.name == edit.name]
    if len(matches) > 1:
        raise ManifestError(path, f"lists image {edit.name!r} {len(matches)} times; keep one entry")
    want = edit.resolve(matches[0][1] if matches else None)

    if matches:
        try:
            _edit_entry(splices, matches[0][0], want, eol)
        except ManifestError as error:
            raise ManifestError(path, error.problem) from None
        return splices.apply()

    if root is None:
        block = f"images:{eol}" + _entry_lines(want, "", "  ", eol)
        return text + ("" if not text or text.endswith(("\n", "\r")) else eol) + block

    if pair is None:
        column = root.value[0][0].start_mark.column if root.value else 0
        dash = " " * (column + _sequence_indent(text, root))
        block = " " * column + f"images:{eol}" + _entry_lines(want, dash, dash + "  ", eol)
        at = root.end_mark.index
        if at < len(text) or not text.endswith(("\n", "\r")):
            # at a document end: insert before the line holding the end mark
            at = text.rfind("\n", 0, at) + 1 if at < len(text) else at
        prefix = "" if at == 0 or text[at - 1] in "\r\n" else eol
        splices.insert(at, prefix + block)
        return splices.apply()

    key_node, seq = pair
    if isinstance(seq, SequenceNode) and seq.value:
        if seq.flow_style:
            raise ManifestError(
                path,
                "images: is a flow list ([...]); this editor only changes block lists",
                hint="write images: as a block list ('- name: ...' lines)",
            )
        first = seq.value[0].start_mark
        dash_at = text.rfind("-", 0, first.index)
        dash = " " * (dash_at - (text.rfind("\n", 0, dash_at) + 1))
        key_indent = " " * first.column
        splices.insert_line(
            _last_scalar_end(seq.value[-1]),
            _entry_lines(want, dash, key_indent, eol)[: -len(eol)],
            eol,
        )
        return splices.apply()

    # images: present but empty (null or []): drop the empty value, add a block
    dash = " " * (key_node.start_mark.column + _sequence_indent(text, root))
    start, end = seq.start_mark.index, seq.end_mark.index
    if text[end : line_end(text, end)].strip() == "":
        start = len(text[:start].rstrip(" \t"))  # no trailing blank after 'images:'
    splices.replace(start, end, "")
    splices.insert_line(
        key_node.start_mark.index,
        _entry_lines(want, dash, dash + "  ", eol)[: -len(eol)],
        eol,
    )
    return splices.apply()


def with_digest(edit: ImageEdit, digest: str | None) -> ImageEdit:
    """``edit`` with another digest (convenience for callers pinning after publish)."""
    return replace(edit, digest=digest)
