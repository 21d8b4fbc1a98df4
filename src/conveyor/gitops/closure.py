"""The directories a kustomization needs to render, read from the object store.

API::

    kustomize_dirs(git, root, directory, *, rev="HEAD") -> set[str]
    local_references(base, text) -> Iterator[str]           # what one kustomization names
    read_kustomization(git, root, path) -> tuple[str, str]   # (file, text) at HEAD

A sparse clone checks out only these directories (see
:func:`conveyor.gitops.update.update_manifest`), so rendering an overlay in a
2,000-app manifest repository writes tens of files, not thousands.  The
kustomization files are read with ``git cat-file --batch`` from a clone that
has no work tree yet, one batch per level of the walk (each reference's kind
and, for a directory, its kustomization file in the same batch).

Followed from every kustomization reached: ``resources``, ``bases`` and
``components`` (directories are walked in turn, files bring their
directory), and the files named by ``patches[].path``,
``patchesStrategicMerge``, ``patchesJson6902[].path``,
``configMapGenerator``/``secretGenerator`` ``files``/``envs``/``env``,
``crds``, ``configurations``, ``openapi.path``, ``replacements[].path``,
``transformers``/``generators``/``validators`` and ``helmGlobals.chartHome``.
Remote targets (URLs, ``git@...``, anything not in the tree) and paths that
leave the repository are ignored.  Not followed: symbolic links (a link's
target directory is not added).  A layout this misses is caught by the
caller, which renders again with every file (see ``update_manifest``).
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.errors import ManifestError
from conveyor.gitops.git import Git, GitObject
from conveyor.gitops.kustomization import KUSTOMIZATION_NAMES, choose_kustomization

# entries that are a file or a kustomization directory
_TARGETS = ("resources", "bases", "components")
# lists of file paths (or of inline YAML, which is told apart by its newline)
_FILE_LISTS = (
    "patchesStrategicMerge",
    "crds",
    "configurations",
    "transformers",
    "generators",
    "validators",
)
# lists of mappings whose "path" names a file
_PATH_ITEMS = ("patches", "patchesJson6902", "replacements")
_GENERATORS = ("configMapGenerator", "secretGenerator")


def kustomize_dirs(git: Git, root: Path, directory: str, *, rev: str = "HEAD") -> set[str]:
    """The directories of ``rev`` that rendering the kustomization in ``directory`` reads.

    Args:
        git: Runs git in the clone.
        root: The clone (a work tree is not needed).
        directory: The kustomization's directory, relative to the repository root.
        rev: The commit to read.

    Returns:
        Repository-relative directories (``""`` is the root): ``directory``
        itself, every local kustomization directory it reaches and the
        directory of every local file they name.  A directory that holds no
        kustomization (or does not exist) is returned as it is, alone.
    """
    start = _normal("", directory)
    if start is None:
        return set()
    needed = {start}
    walked: set[str] = set()
    pending = [start]
    texts = _kustomizations(git, root, rev, pending)
    step = 1 + len(KUSTOMIZATION_NAMES)
    while pending:
        walked.update(pending)
        references: set[str] = set()
        for base, text in zip(pending, texts, strict=True):
            if text is not None:
                references.update(local_references(base, text))
        ordered = sorted(references - walked)
        # one batch a level: each reference's kind and, if it is a directory, its kustomization
        found = git.objects(
            root,
            [
                name
                for path in ordered
                for name in (f"{rev}:{path}", *_kustomization_names(rev, path))
            ],
        )
        pending, texts = [], []
        for index, path in enumerate(ordered):
            kind, *candidates = found[index * step : (index + 1) * step]
            if kind is None:
                continue  # not in the tree: remote, or kustomize will report it
            if kind.type == "tree":
                needed.add(path)
                pending.append(path)
                texts.append(_kustomization_text(candidates))
            elif kind.type == "blob":
                needed.add(posixpath.dirname(path))
    return needed


def read_kustomization(git: Git, root: Path, path: str) -> tuple[str, str]:
    """The kustomization file of directory ``path`` at ``HEAD`` and its text.

    Read from the object store (the clone needs no work tree); the file is
    chosen by the one finder (:func:`~conveyor.gitops.kustomization.choose_kustomization`).

    Args:
        git: Runs git in the clone.
        root: The clone.
        path: The directory, relative to the repository root.

    Returns:
        The file's path relative to the repository root, and its text.

    Raises:
        ManifestError: no such directory, no kustomization in it, or more than one.
    """
    directory = PurePosixPath(path).as_posix().strip("/")
    directory = "" if directory == "." else directory
    names = [f"{directory}/{n}" if directory else n for n in KUSTOMIZATION_NAMES]
    tree, *candidates = git.objects(root, [f"HEAD:{directory}", *(f"HEAD:{n}" for n in names)])
    blobs = {
        name: blob.data
        for name, blob in zip(KUSTOMIZATION_NAMES, candidates, strict=True)
        if blob is not None and blob.type == "blob"
    }
    chosen = choose_kustomization(path, blobs, exists=tree is not None and tree.type == "tree")
    file, data = (f"{directory}/{chosen}" if directory else chosen), blobs[chosen]
    listed = git.run(["ls-tree", "HEAD", "--", file], cwd=root).stdout
    if listed.startswith("120000 "):
        raise ManifestError(
            file,
            f"is a symbolic link (to {data.decode('utf-8', 'replace')}) in the manifest "
            "repository; Conveyor reads and writes only regular files inside the repository",
            hint="commit the kustomization itself, not a link to it",
        )
    try:
        return file, data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestError(file, f"is not UTF-8 text: {error}") from error


def _kustomizations(git: Git, root: Path, rev: str, directories: list[str]) -> list[str | None]:
    """The kustomization text of each directory (``None``: none, or not UTF-8)."""
    found = git.objects(root, [n for d in directories for n in _kustomization_names(rev, d)])
    step = len(KUSTOMIZATION_NAMES)
    return [_kustomization_text(found[at : at + step]) for at in range(0, len(found), step)]


def _kustomization_names(rev: str, directory: str) -> list[str]:
    """The object names of each file name a kustomization in ``directory`` may have."""
    return [f"{rev}:{posixpath.join(directory, name)}" for name in KUSTOMIZATION_NAMES]


def _kustomization_text(candidates: Sequence[GitObject | None]) -> str | None:
    """The text of the first of a directory's kustomization files (``None``: none, not UTF-8)."""
    blobs = [o for o in candidates if o and o.type == "blob"]
    try:
        return blobs[0].data.decode("utf-8") if blobs else None
    except UnicodeDecodeError:
        return None


def local_references(base: str, text: str) -> Iterator[str]:
    """Repository-relative paths a kustomization in ``base`` names (local ones only)."""
    yield from _references(base, text)


@functools.lru_cache(maxsize=256)
def _references(base: str, text: str) -> tuple[str, ...]:
    # a base or component shared by several environments is walked once per
    # environment, and again after the edit: its YAML is parsed once
    return tuple(_parsed_references(base, text))


def _parsed_references(base: str, text: str) -> Iterator[str]:
    try:
        document = YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return  # kustomize will say what is wrong with it
    if not isinstance(document, Mapping):
        return
    for raw in _named(document):
        path = _normal(base, raw)
        if path is not None:
            yield path


def _named(document: Mapping[str, Any]) -> Iterator[str]:
    for key in (*_TARGETS, *_FILE_LISTS):
        yield from _strings(document.get(key))
    for key in _PATH_ITEMS:
        for item in _items(document.get(key)):
            yield from _strings(item.get("path"))
    for key in _GENERATORS:
        for item in _items(document.get(key)):
            for entry in _strings(item.get("files")):
                # "key=path" or "path", split as kustomize splits it
                yield entry.partition("=")[2] if "=" in entry else entry
            yield from _strings(item.get("envs"))
            yield from _strings(item.get("env"))
    for key, field in (("openapi", "path"), ("helmGlobals", "chartHome")):
        value = document.get(key)
        if isinstance(value, Mapping):
            yield from _strings(value.get(field))


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def _items(value: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, Mapping))


def _normal(base: str, reference: str) -> str | None:
    """``reference`` relative to the repository root, or ``None`` if it is not a local path."""
    reference = reference.strip()
    if (
        not reference
        or "\n" in reference
        or "://" in reference
        or reference.startswith(("/", "git@", "ssh:", "https:", "http:", "file:"))
    ):
        return None
    path = posixpath.normpath(posixpath.join(base, reference))
    if path == ".":
        return ""
    if path == ".." or path.startswith("../"):
        return None  # outside the repository
    return path
