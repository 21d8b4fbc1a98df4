"""The ``images:`` list of a kustomization, read and edited as located text.

API:
    ``ImageEntry(name, new_name, new_tag, digest)`` is one entry as the file
    has it.  ``read_entries(text, path) -> list[ImageEntry]`` reads them all;
    ``write_entry(text, want, path) -> str`` makes the entry named
    ``want.name`` hold exactly ``want``'s fields (adding it, or the whole
    ``images:`` list, when missing).

Entries may be block mappings (``- name: a``) or flow mappings
(``- {name: a, newTag: v1}``), in a block or a flow list (``images: [...]``);
each is edited in its own style.  Values may carry anchors (``&reg``) or be
aliases (``*reg``), and an entry may take fields from a merge key
(``<<: *defaults``): only the edited entry changes meaning.  An alias in the
edited entry is replaced by the new value; an anchored value that other
entries use moves its anchor to the first of them, so they keep their value.

Every edit is checked before it is returned: the new text must parse, hold
the same entries except the edited one (which must read back as ``want``)
and the same everything else.  What this editor cannot change safely raises
:class:`ManifestError` naming the entry, and nothing is written.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from io import StringIO
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.errors import ManifestError
from conveyor.gitops.yamltext import (
    Located,
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    Splices,
    format_scalar,
    is_null,
    line_end,
    line_ending,
    line_start,
    locate,
    mapping_get,
    scalar_text,
)

FIELDS = (("newName", "new_name"), ("newTag", "new_tag"), ("digest", "digest"))
_KEYS = ("name", "newName", "newTag", "digest")
_KINDS = ("Kustomization", "Component")


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


@dataclass
class _Entry:
    loc: Located
    index: int
    entry: ImageEntry
    # values that come only from a merge key ('<<'), by field name
    merged: dict[str, str | None] = field(default_factory=dict)


@dataclass
class _List:
    text: str
    path: str
    root: Located | None
    key: Located | None
    value: Located | None
    entries: list[_Entry]


def _kind(root: Located, path: str) -> str | None:
    pair = root.get("kind")
    return None if pair is None else scalar_text(pair[1].node, path, "kind")


def _root(text: str, path: str) -> Located | None:
    """The Kustomization: the first document, which is the only one kustomize reads."""
    roots = locate(text, path)
    if not roots:
        return None
    first = roots[0]
    if not isinstance(first.node, MappingNode):
        raise ManifestError(path, "is not a YAML mapping", hint="a kustomization is a mapping")
    kind = _kind(first, path)
    if len(roots) > 1 and kind not in (None, *_KINDS):
        raise ManifestError(
            path,
            f"has {len(roots)} YAML documents and the first is a {kind}; kustomize reads "
            "only the first document of a kustomization file",
            hint="move the Kustomization to the top of the file (or into a file of its own)",
        )
    return first


def _merged_values(node: Node, path: str, where: str) -> dict[str, str | None]:
    """The fields a merge key's value brings (a mapping, or a list of mappings)."""
    sources = node.value if isinstance(node, SequenceNode) else [node]
    values: dict[str, str | None] = {}
    for source in sources:
        if not isinstance(source, MappingNode):
            raise ManifestError(path, f"{where}: the merge key (<<) must name a mapping")
        for key in _KEYS:
            pair = mapping_get(source, key)
            if pair is not None and key not in values:
                # the first mapping of a merge list wins, as YAML says
                values[key] = scalar_text(pair[1], path, f"{where}.{key}")
    return values


def _entry(loc: Located, path: str, index: int) -> _Entry:
    where = f"images[{index}]"
    if not isinstance(loc.node, MappingNode):
        raise ManifestError(path, f"{where} must be a mapping with 'name'")
    values: dict[str, str | None] = {}
    merged: dict[str, str | None] = {}
    for key, value in loc.pairs:
        if key.is_merge():
            brought = _merged_values(value.node, path, where)
            clash = [k for k in _KEYS if k in values and k in brought]
            if clash:
                # YAML lets the entry's own key win; kustomize's reader lets a later merge win
                raise ManifestError(
                    path,
                    f"{where}: the merge key (<<) comes after {', '.join(clash)}, which it also "
                    "sets: YAML and kustomize read that entry differently",
                    hint="put '<<' first in the entry",
                )
            for field_name, field_text in brought.items():
                merged.setdefault(field_name, field_text)
        elif isinstance(key.node, ScalarNode) and key.node.value in _KEYS:
            values[key.node.value] = scalar_text(value.node, path, f"{where}.{key.node.value}")
    inherited = {k: v for k, v in merged.items() if k not in values}
    values = {**inherited, **values}
    name = values.get("name")
    if not name:
        raise ManifestError(path, f"{where} has no 'name'")
    entry = ImageEntry(name, values.get("newName"), values.get("newTag"), values.get("digest"))
    return _Entry(loc, index, entry, inherited)


def _parse(text: str, path: str) -> _List:
    root = _root(text, path)
    if root is None:
        return _List(text, path, None, None, None, [])
    pair = root.get("images")
    if pair is None:
        return _List(text, path, root, None, None, [])
    key, value = pair
    if not (isinstance(value.node, SequenceNode) or is_null(value.node)):
        raise ManifestError(path, "images: must be a list of entries", hint="see kustomize docs")
    entries = [_entry(item, path, i) for i, item in enumerate(value.items)]
    return _List(text, path, root, key, value, entries)


def read_entries(text: str, path: str = "kustomization.yaml") -> list[ImageEntry]:
    """Every entry of the ``images:`` list, in file order.

    Raises:
        ManifestError: malformed YAML or a malformed ``images:`` list.
    """
    return list(_entries(text, path))


@functools.lru_cache(maxsize=64)
def _entries(text: str, path: str) -> tuple[ImageEntry, ...]:
    # an update reads the same file's images several times (the value found at
    # the clone, the ordering's look, the conflict check): one round-trip parse
    return tuple(e.entry for e in _parse(text, path).entries)


def _refuse(path: str, where: str, problem: str, hint: str) -> ManifestError:
    return ManifestError(path, f"{where}: {problem}; nothing was changed", hint=hint)


def _column(text: str, index: int) -> int:
    start = line_start(text, index)
    return index - start - (1 if text.startswith("\ufeff") and start == 0 else 0)


def _flow_scalar(value: str) -> str:
    # plain scalars with ':' are read differently by YAML 1.1 parsers in flow context
    text = format_scalar(value)
    return text if ":" not in text or text.startswith(('"', "'")) else format_scalar(value, _DQ)


_DQ = ScalarNode("tag:yaml.org,2002:str", "", style='"')


def _entry_block(entry: ImageEntry, dash: str, eol: str, gap: str = " ") -> str:
    """The entry as block lines: ``{dash}-{gap}name: ...``, later keys under ``name``."""
    lines = [f"{dash}-{gap}name: {format_scalar(entry.name)}"]
    key_indent = " " * (len(dash) + 1 + len(gap))
    for key, attr in FIELDS:
        value = getattr(entry, attr)
        if value is not None:
            lines.append(f"{key_indent}{key}: {format_scalar(value)}")
    return eol.join(lines)


def _entry_flow(entry: ImageEntry) -> str:
    parts = [f"name: {_flow_scalar(entry.name)}"]
    for key, attr in FIELDS:
        value = getattr(entry, attr)
        if value is not None:
            parts.append(f"{key}: {_flow_scalar(value)}")
    return "{" + ", ".join(parts) + "}"


class _EntryEditor:
    """Splices that make one located entry hold ``want``."""

    def __init__(self, images: _List, found: _Entry, splices: Splices, eol: str) -> None:
        self.images = images
        self.found = found
        self.splices = splices
        self.eol = eol
        self.text = images.text
        self.where = f"images[{found.index}] ({found.entry.name})"

    def refuse(self, problem: str, hint: str) -> ManifestError:
        return _refuse(self.images.path, self.where, problem, hint)

    def run(self, want: ImageEntry) -> None:
        loc = self.found.loc
        if loc.alias is not None:
            raise self.refuse(
                f"the entry is an alias (*{loc.alias}) of another node",
                "write the entry out in full",
            )
        if loc.aliases:
            self.write_out_merges(loc)
        wanted = {key: getattr(want, attr) for key, attr in FIELDS}
        pairs = loc.pairs
        # a field the merge key (<<) brings cannot be removed while the merge stays:
        # then the merge goes, and the entry is written out in full (as kustomize does)
        unmerge = any(
            value is None and self.found.merged.get(key) is not None
            for key, value in wanted.items()
            if key not in self.explicit()
        )
        added = self.missing(wanted, unmerge=unmerge)
        removed = [
            (unmerge and k.is_merge())
            or (
                isinstance(k.node, ScalarNode)
                and not k.is_merge()
                and k.node.value in wanted
                and wanted[str(k.node.value)] is None
            )
            for k, _ in pairs
        ]
        for (key, value), gone in zip(pairs, removed, strict=True):
            if gone:
                self.release(value, str(key.node.value))
        self.remove_runs(pairs, removed)
        for (key, value), gone in zip(pairs, removed, strict=True):
            name = str(key.node.value) if isinstance(key.node, ScalarNode) else ""
            if gone or key.is_merge() or name not in wanted:
                continue
            new = wanted[name]
            assert new is not None
            self.replace(name, value, new)
        if added:
            self.add(pairs, added)

    def write_out_merges(self, loc: Located) -> None:
        """Before the anchored entry changes: entries merging it (``<<: *a``) get its fields.

        Each such merge key is replaced by the fields it brings, in the entry's
        style, so those entries keep their meaning.  Any other use of the
        anchor is refused.
        """
        for other in self.images.entries:
            for key, value in other.loc.pairs:
                if not (key.is_merge() and value.alias is not None and value.target is loc):
                    continue
                fields = [(k, v) for k, v in other.merged.items() if v is not None]
                if other.loc.flow:
                    text = ", ".join(f"{k}: {_flow_scalar(v)}" for k, v in fields)
                else:
                    indent = self.eol + " " * _column(self.text, key.begin)
                    text = indent.join(f"{k}: {format_scalar(v)}" for k, v in fields)
                if text:
                    self.splices.replace(key.begin, value.end, text)
                else:  # it brings nothing the entry keeps: the merge key just goes
                    gone = [k is key for k, _ in other.loc.pairs]
                    self.remove_runs(other.loc.pairs, gone, flow=other.loc.flow)
                loc.aliases.remove(value)
        if loc.aliases:
            raise self.refuse(
                f"the entry carries the anchor &{loc.anchor}, which other nodes use",
                "write the entry out where the alias is, or remove the anchor",
            )

    def explicit(self) -> set[str]:
        """The keys written in the entry itself (not brought by a merge key)."""
        return {
            str(k.node.value)
            for k, _ in self.found.loc.pairs
            if isinstance(k.node, ScalarNode) and not k.is_merge()
        }

    def missing(
        self, wanted: dict[str, str | None], *, unmerge: bool = False
    ) -> list[tuple[str, str]]:
        """The fields to add: not written in the entry, nor given by a merge key that stays."""
        explicit = self.explicit()
        added: list[tuple[str, str]] = []
        if unmerge and "name" not in explicit:
            added.append(("name", self.found.entry.name))
        for key, value in wanted.items():
            if key in explicit:
                continue
            if key in self.found.merged and not unmerge and value == self.found.merged[key]:
                continue
            if value is not None:
                added.append((key, value))
        return added

    def release(self, value: Located, key: str) -> None:
        """Before ``value`` changes or goes: give its anchor to the first alias using it."""
        if not value.aliases:
            return
        if not isinstance(value.node, ScalarNode) or value.node.style in ("|", ">"):
            raise self.refuse(
                f"{key} carries the anchor &{value.anchor}, which other nodes use",
                "write the value out where the alias is, or remove the anchor",
            )
        first = min(value.aliases, key=lambda a: a.start)
        own = self.text[value.start : value.end]
        self.splices.replace(first.start, first.end, f"&{value.anchor} {own}")

    def replace(self, key: str, value: Located, new: str) -> None:
        node = value.node
        if not isinstance(node, ScalarNode):
            raise self.refuse(f"{key} must be a single value", "write it as one scalar")
        if node.value == new and not is_null(node):
            return
        self.release(value, key)
        if node.style in ("|", ">"):
            # a block scalar ('>-' and its lines) becomes one value on the key's line
            span = self.text[value.start : value.end]
            ending = span[len(span.rstrip("\r\n")) :]
            self.splices.replace(value.start, value.end, format_scalar(new) + ending)
            return
        like = None if is_null(node) else node
        if self.found.loc.flow and like is None:
            token = _flow_scalar(new)
        else:
            token = format_scalar(new, like)
        start = value.start
        if value.alias is not None:
            start = value.begin
        elif value.aliases:
            start = value.begin  # the anchor moved to its first alias (release)
        if is_null(node) and value.start == value.end:
            token = " " + token if self.text[value.start - 1] == ":" else token
        self.splices.replace(start, value.end, token)

    def remove_runs(
        self,
        pairs: list[tuple[Located, Located]],
        removed: list[bool],
        *,
        flow: bool | None = None,
    ) -> None:
        """Delete each run of consecutive removed keys as one range (never overlapping)."""
        text = self.text
        flow = self.found.loc.flow if flow is None else flow
        i = 0
        while i < len(pairs):
            if not removed[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(pairs) and removed[j + 1]:
                j += 1
            key_start = pairs[i][0].begin
            if flow:
                if j + 1 < len(pairs):
                    self.splices.replace(key_start, pairs[j + 1][0].begin, "")
                else:
                    self.splices.replace(pairs[i - 1][1].last, pairs[j][1].last, "")
                i = j + 1
                continue
            start = line_start(text, key_start)
            on_dash_line = text[start:key_start].strip(" \t\ufeff") != ""
            if j + 1 < len(pairs):
                next_key = pairs[j + 1][0].begin
                if on_dash_line:
                    # '- newTag: x\n  name: a' -> '- name: a': keep the dash, pull the next key up
                    self.splices.replace(key_start, next_key, "")
                else:
                    self.splices.replace(start, line_start(text, next_key), "")
            else:
                last = pairs[j][1]
                self.splices.replace(start, line_end(text, max(last.last - 1, last.start)), "")
            i = j + 1

    def add(self, pairs: list[tuple[Located, Located]], added: list[tuple[str, str]]) -> None:
        last = pairs[-1][1].last
        if self.found.loc.flow:
            new = "".join(f", {key}: {_flow_scalar(value)}" for key, value in added)
            self.splices.insert(last, new)
            return
        indent = " " * _column(self.text, pairs[0][0].begin)
        lines = [f"{indent}{key}: {format_scalar(value)}" for key, value in added]
        self.splices.insert_line(max(last - 1, pairs[-1][1].start), self.eol.join(lines), self.eol)


def _sequence_indent(text: str, root: Located) -> int:
    """How far block lists are indented under their key in this file (0 or 2 usually)."""
    for key, value in root.pairs:
        if isinstance(value.node, SequenceNode) and not value.flow and value.items:
            first = value.items[0].begin
            dash = text.rfind("-", 0, first)
            return max(0, _column(text, dash) - _column(text, key.begin))
    return 0


def _append(images: _List, want: ImageEntry, splices: Splices, eol: str) -> None:
    text = images.text
    root, key, value = images.root, images.key, images.value
    if root is None:
        block = f"images:{eol}" + _entry_block(want, "", eol) + eol
        splices.insert(len(text), ("" if not text or text.endswith(("\n", "\r")) else eol) + block)
        return
    if key is None or value is None:
        column = _column(text, root.pairs[0][0].begin) if root.pairs else 0
        dash = " " * (column + _sequence_indent(text, root))
        block = " " * column + f"images:{eol}" + _entry_block(want, dash, eol) + eol
        at = root.end
        if at < len(text) or not text.endswith(("\n", "\r")):
            # at a document end: insert before the line holding the end mark
            at = text.rfind("\n", 0, at) + 1 if at < len(text) else at
        prefix = "" if at == 0 or text[at - 1] in "\r\n" else eol
        splices.insert(at, prefix + block)
        return
    if value.alias is not None:
        raise _refuse(
            images.path,
            "images",
            f"the list is an alias (*{value.alias})",
            "write the images: list out",
        )
    if value.items:
        last = value.items[-1]
        if value.flow:
            splices.insert(last.last, ", " + _entry_flow(want))
            return
        first = value.items[0].begin
        dash_at = text.rfind("-", 0, first)
        dash = " " * _column(text, dash_at)
        if all(item.flow for item in value.items):
            line = f"{dash}- {_entry_flow(want)}"
        else:
            gap = " " * max(1, _column(text, first) - _column(text, dash_at) - 1)
            line = _entry_block(want, dash, eol, gap)
        splices.insert_line(max(last.last - 1, last.start), line, eol)
        return
    # images: present but empty (null or []): drop the empty value, add a block
    dash = " " * (_column(text, key.begin) + _sequence_indent(text, root))
    start, end = value.begin, value.end
    rest = text[end : line_end(text, end)]
    if rest.strip() == "":
        start = len(text[:start].rstrip(" \t"))  # no trailing blank after 'images:'
    elif start < end and rest.lstrip(" \t").startswith("#"):
        end += len(rest) - len(rest.lstrip(" \t"))  # 'images: [] # x' -> 'images: # x'
    splices.replace(start, end, "")
    splices.insert_line(key.start, _entry_block(want, dash, eol), eol)


def write_entry(text: str, want: ImageEntry, path: str = "kustomization.yaml") -> str:
    """``text`` with the entry named ``want.name`` holding exactly ``want``'s fields.

    Returns:
        The new text; equal to ``text`` when the entry already says the same.

    Raises:
        ManifestError: malformed YAML, not a Kustomization, the image listed
            twice, or an entry this editor cannot change safely.
    """
    images = _parse(text, path)
    matches = [e for e in images.entries if e.entry.name == want.name]
    if len(matches) > 1:
        raise ManifestError(path, f"lists image {want.name!r} {len(matches)} times; keep one entry")
    if matches and matches[0].entry == want:
        return text
    splices = Splices(text)
    eol = line_ending(text)
    if matches:
        _EntryEditor(images, matches[0], splices, eol).run(want)
    else:
        _append(images, want, splices, eol)
    try:
        new = splices.apply()
    except ValueError:
        # two changes meet in one place: values of the entry share an anchor
        raise ManifestError(
            path,
            f"cannot set image {want.name!r} safely: its values share anchors and aliases; "
            "nothing was changed",
            hint="write the entry's values out in full and run again",
        ) from None
    _check(images, new, want)
    return new


def _documents(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(StringIO(text)))


def _check(before: _List, new: str, want: ImageEntry) -> None:
    """The edit changed the one entry and nothing else, or it is refused."""
    path = before.path
    problem = ""
    try:
        after = _parse(new, path)
        expected = [want if e.entry.name == want.name else e.entry for e in before.entries]
        if want.name not in {e.entry.name for e in before.entries}:
            expected.append(want)
        got = [e.entry for e in after.entries]
        if got != expected:
            problem = "the entries would not read back as intended"
        else:
            old_docs, new_docs = _documents(before.text), _documents(new)
            for doc in (*old_docs, *new_docs):
                if isinstance(doc, dict) and doc.get("kind", "Kustomization") in _KINDS:
                    doc.pop("images", None)
            # an empty file and one holding only 'images:' are the same elsewhere
            if [d for d in old_docs if d not in (None, {})] != [
                d for d in new_docs if d not in (None, {})
            ]:
                problem = "the edit would change more than the images: entry"
    except (ManifestError, YAMLError) as error:
        problem = f"the edited text would not parse ({error})"
    if problem:
        raise ManifestError(
            path,
            f"cannot set image {want.name!r} safely: {problem}; nothing was changed",
            hint="write images: as a plain block list ('- name: ...' lines) and run again",
        )
