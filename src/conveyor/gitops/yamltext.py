"""YAML as text: locate nodes with ruamel.yaml, then splice only their bytes.

Editors in this package never re-dump a document: they compose it with
ruamel.yaml (round-trip loader, which gives every node its start and end
position in the original text) and replace or insert exact character ranges.
Comments, key order, indentation, quoting, line endings (LF or CRLF) and every
unrelated byte therefore stay as they were.

API:
    ``compose(text, path) -> list[Node]`` (one root node per document; raises
    :class:`ManifestError` naming the file for malformed YAML),
    ``locate(text, path) -> list[Located]`` (the same documents with the exact
    span of every value's own token, its anchor, and for an alias the node it
    stands for: what an editor needs to change one value without touching an
    anchor or another node that shares it),
    ``mapping_get``, ``scalar_text``, ``format_scalar``, ``line_ending``,
    and :class:`Splices`, an ordered set of replacements applied at once.

A byte order mark at the start is allowed (the YAML reader skips it and every
index still counts it), as kustomize allows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from io import StringIO

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from conveyor.errors import ManifestError

__all__ = [
    "Located",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "Splices",
    "compose",
    "format_scalar",
    "line_end",
    "line_ending",
    "line_start",
    "locate",
    "mapping_get",
    "scalar_text",
]

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# an anchor or a tag written before a value: '&name ', '!!str ', '!local '
_PROPERTIES = re.compile(r"(?:[&!][^\s,\[\]{}]*\s+)*")
# what YAML 1.1 readers (kustomize's go-yaml) take for a number, not a string: decimal
# ints and floats, hex, octal, binary, sexagesimal ('6.14.2' is none of these)
_NUMBERISH = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)"
)
# YAML 1.1 booleans and nulls, in any case
_WORDS = frozenset({"y", "yes", "n", "no", "true", "false", "on", "off", "null", "~"})
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@+=-]*")


def compose(text: str, path: str) -> list[Node]:
    """The root node of every non-empty document in ``text``.

    Raises:
        ManifestError: ``text`` is not valid YAML (the message names ``path``,
            the line and the problem), or a mapping has the same key twice.
    """
    yaml = YAML(typ="rt")
    try:
        nodes = [node for node in yaml.compose_all(StringIO(text)) if node is not None]
    except YAMLError as error:
        raise _invalid(path, error) from error
    for root in nodes:
        _check_unique_keys(root, path)
    return nodes


def _invalid(path: str, error: YAMLError) -> ManifestError:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ManifestError(
        path, f"is not valid YAML{where}: {problem}", hint="fix the file, then run again"
    )


@dataclass(eq=False)
class Located:
    """A node of the text with the span of its own token.

    Attributes:
        node: The composed node (for an alias: the node it stands for).
        start: Index of the value's own first character: a scalar's first
            character (its quote included), ``{``/``[`` of a flow collection,
            the first entry of a block collection, ``*`` of an alias.  An
            anchor or tag written before the value lies before ``start``.
        end: Index just past the value (a flow collection's closing bracket;
            for a block collection, its last value: see :attr:`last`).
        begin: Index of the value's anchor or tag when it has one (else ``start``).
        alias: The anchor name when this is an alias (``*name``).
        anchor: The anchor this value defines (``&name``), if any.
        target: For an alias, the anchored value it stands for.
        aliases: For an anchored value, every alias that stands for it.
        pairs: A mapping's (key, value) pairs, in text order.
        items: A sequence's items, in text order.
    """

    node: Node
    start: int
    end: int
    begin: int = -1
    alias: str | None = None
    anchor: str | None = None
    target: Located | None = None
    aliases: list[Located] = field(default_factory=list)
    pairs: list[tuple[Located, Located]] = field(default_factory=list)
    items: list[Located] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.begin < 0:
            self.begin = self.start

    @property
    def flow(self) -> bool:
        """Whether this is a flow collection (``{...}`` or ``[...]``)."""
        return bool(getattr(self.node, "flow_style", False)) and self.alias is None

    @property
    def last(self) -> int:
        """Index just past the last character of the value's text (comments excluded)."""
        if self.alias is not None or not isinstance(self.node, (MappingNode, SequenceNode)):
            return self.end
        if self.flow:
            return self.end
        children = [v for _, v in self.pairs] if self.pairs else self.items
        return children[-1].last if children else self.end

    def get(self, key: str) -> tuple[Located, Located] | None:
        """The (key, value) pair of a mapping for ``key``."""
        for key_loc, value in self.pairs:
            if isinstance(key_loc.node, ScalarNode) and key_loc.node.value == key:
                return key_loc, value
        return None

    def is_merge(self) -> bool:
        """Whether this is a merge key (``<<``)."""
        return isinstance(self.node, ScalarNode) and self.node.tag == _MERGE_TAG


def locate(text: str, path: str) -> list[Located]:
    """Every non-empty document of ``text`` as a :class:`Located` tree.

    Raises:
        ManifestError: like :func:`compose`.
    """
    yaml = YAML(typ="rt")
    try:
        nodes = list(yaml.compose_all(StringIO(text)))
        events = [e for e in YAML(typ="rt").parse(StringIO(text)) if _is_node_event(e)]
    except YAMLError as error:
        raise _invalid(path, error) from error
    for root in nodes:
        if root is not None:
            _check_unique_keys(root, path)
    stream = iter(events)
    anchors: dict[str, Located] = {}
    return [_build(text, root, stream, anchors) for root in nodes if root is not None]


def _is_node_event(event: Event) -> bool:
    # a collection's end event is read right after its children (see _build)
    return isinstance(event, (AliasEvent, ScalarEvent, CollectionStartEvent, CollectionEndEvent))


def _build(text: str, node: Node, stream: Iterator[Event], anchors: dict[str, Located]) -> Located:
    event = next(stream)
    if isinstance(event, AliasEvent):
        target = anchors.get(str(event.anchor))
        loc = Located(node, event.start_mark.index, event.end_mark.index, alias=str(event.anchor))
        loc.target = target
        if target is not None:
            target.aliases.append(loc)
        return loc
    begin = int(event.start_mark.index)
    props = _PROPERTIES.match(text, begin)
    start = props.end() if props is not None else begin
    anchor = getattr(event, "anchor", None)
    loc = Located(node, start, int(event.end_mark.index), begin, anchor=anchor)
    if isinstance(event, MappingStartEvent):
        assert isinstance(node, MappingNode)
        loc.pairs = [
            (_build(text, key, stream, anchors), _build(text, value, stream, anchors))
            for key, value in node.value
        ]
        loc.end = int(next(stream).end_mark.index)
    elif isinstance(event, SequenceStartEvent):
        assert isinstance(node, SequenceNode)
        loc.items = [_build(text, item, stream, anchors) for item in node.value]
        loc.end = int(next(stream).end_mark.index)
    if anchor is not None:
        # a later '&name' redefines it: aliases after that stand for the new value
        anchors[str(anchor)] = loc
    return loc


def _check_unique_keys(root: Node, path: str) -> None:
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    if key.value in seen:
                        raise ManifestError(
                            path,
                            f"is not valid YAML at line {key.start_mark.line + 1}: "
                            f"key {key.value!r} appears twice in the same mapping",
                            hint="keep one of them",
                        )
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def mapping_get(node: MappingNode, key: str) -> tuple[ScalarNode, Node] | None:
    """The (key node, value node) pair for ``key`` in a mapping node, if present."""
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def is_null(node: Node) -> bool:
    """Whether a node is an empty/``~``/``null`` scalar."""
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def scalar_text(node: Node, path: str, what: str) -> str | None:
    """The string value of a scalar node (``None`` for null).

    Raises:
        ManifestError: the node is a mapping or sequence.
    """
    if not isinstance(node, ScalarNode):
        found = "list" if isinstance(node, SequenceNode) else "mapping"
        raise ManifestError(path, f"{what} must be a single value, found a {found}")
    if is_null(node):
        return None
    return str(node.value)


@lru_cache(maxsize=4096)
def _plain_is_string(value: str) -> bool:
    if not _PLAIN_SAFE.fullmatch(value) or ": " in value or value.endswith(":"):
        return False
    if _NUMBERISH.fullmatch(value) or value.lower() in _WORDS:
        # YAML 1.1 readers (kustomize's) take these as numbers or times
        return False
    try:
        loaded = YAML(typ="safe", pure=True).load(f"k: {value}\n")
    except YAMLError:
        return False
    return isinstance(loaded, dict) and loaded.get("k") == value and isinstance(value, str)


def format_scalar(value: str, like: ScalarNode | None = None) -> str:
    """``value`` as a YAML scalar token, in the quoting style of ``like`` when given.

    A plain token is used only when YAML reads it back as the same string
    (``1.0``, ``true`` or ``0123`` are quoted).
    """
    style = like.style if like is not None else None
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not _plain_is_string(value):
        return json.dumps(value)
    return value


def line_ending(text: str) -> str:
    """The line ending the file uses: CRLF when its first line break is CRLF."""
    first = text.find("\n")
    if first > 0 and text[first - 1] == "\r":
        return "\r\n"
    return "\n"


def line_start(text: str, index: int) -> int:
    """Index of the first character of the line holding ``index``."""
    return max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1


def line_end(text: str, index: int) -> int:
    """Index just past the line break ending the line that holds ``index`` (or len)."""
    for i in range(index, len(text)):
        char = text[i]
        if char == "\n":
            return i + 1
        if char == "\r":
            return i + 2 if text[i + 1 : i + 2] == "\n" else i + 1
    return len(text)


@dataclass
class Splices:
    """Replacements of ``text[start:end]``, applied together from the end backwards."""

    text: str
    _items: list[tuple[int, int, int, str]] = field(default_factory=list)

    def replace(self, start: int, end: int, new: str) -> None:
        """Replace ``text[start:end]`` by ``new``."""
        self._items.append((start, end, len(self._items), new))

    def insert(self, at: int, new: str) -> None:
        """Insert ``new`` before ``text[at]`` (in call order for the same position)."""
        self.replace(at, at, new)

    def insert_line(self, after: int, line: str, eol: str) -> None:
        """Insert ``line`` as a whole line after the line that holds ``after``."""
        at = line_end(self.text, after)
        prefix = "" if at == 0 or self.text[at - 1] in "\r\n" else eol
        self.insert(at, prefix + line + eol)

    def apply(self) -> str:
        """The edited text."""
        text = self.text
        ordered = sorted(self._items, key=lambda item: (item[0], item[1], item[2]))
        pieces: list[str] = []
        cursor = len(text)
        # walk from the end so that earlier indices stay valid; same-position
        # inserts keep call order because the list is reversed as a whole
        for start, end, _, new in reversed(ordered):
            if end > cursor:
                raise ValueError("overlapping splices")
            pieces.append(text[end:cursor])
            pieces.append(new)
            cursor = start
        pieces.append(text[:cursor])
        return "".join(reversed(pieces))
