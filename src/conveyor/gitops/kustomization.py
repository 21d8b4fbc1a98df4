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
    ``find_image(text, name, path)`` read entries.
    ``choose_kustomization(dir, present)`` is the one finder of the file
    kustomize reads; ``kustomization_file(dir)`` applies it to a work tree.

Only the bytes of the touched entry change, in its own style (block or flow),
and anchors keep their meaning (see :mod:`.imagelist`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from conveyor.errors import InvalidReferenceError, ManifestError
from conveyor.gitops.imagelist import ImageEntry, read_entries, write_entry
from conveyor.policy.reference import ImageReference

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
PRESERVE = "*"

_TAG_PATTERN = re.compile(r"^(.*):([a-zA-Z0-9._-]*|\*)$")
_NAME = re.compile(r"[^\s#=@'\"{}\[\],]+")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_USAGE = "expected NAME=NEWNAME[:TAG][@DIGEST], NAME:TAG or NAME@DIGEST"


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
            if not parts[0]:
                raise InvalidReferenceError(spec, f"the image name before '=' is empty; {_USAGE}")
            if not parts[1]:
                raise InvalidReferenceError(spec, f"nothing after '{parts[0]}='; {_USAGE}")
            name, (new_name, tag, digest) = parts[0], _overwrite(spec, parts[1], True)
            return cls(name, new_name or None, tag, digest)
        if len(parts) > 2:
            raise InvalidReferenceError(spec, f"more than one '='; {_USAGE}")
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
    _, colon, tag = arg.rpartition(":")
    if colon and "/" not in tag:
        raise InvalidReferenceError(
            spec, f"tag {tag!r} is not valid (letters, digits, '_', '.', '-'); {_USAGE}"
        )
    raise InvalidReferenceError(spec, f"{arg!r} sets nothing: add :TAG, @DIGEST or =NEWNAME")


def choose_kustomization(directory: str, present: Iterable[str], *, exists: bool = True) -> str:
    """The one kustomization file kustomize reads in ``directory``: the one finder.

    Every path (set-image, manifest update, the manifest stage, promote,
    rollback, the policy check) chooses the file with this function, reading
    what is there from a work tree (:func:`kustomization_file`) or from the
    object store (:func:`conveyor.gitops.closure.read_kustomization`).

    Args:
        directory: The directory as the user knows it (for messages).
        present: The names of :data:`KUSTOMIZATION_NAMES` that are files there.
        exists: Whether the directory exists at all.

    Returns:
        The file's name (``kustomization.yaml``, ``kustomization.yml`` or
        ``Kustomization``).

    Raises:
        ManifestError: no such directory, no kustomization in it, or more than one.
    """
    found = [name for name in KUSTOMIZATION_NAMES if name in set(present)]
    hint = "check the environment's path in gitops.environments"
    if not exists:
        raise ManifestError(directory, "directory does not exist", hint=hint)
    if not found:
        raise ManifestError(directory, f"has no {', '.join(KUSTOMIZATION_NAMES)}", hint=hint)
    if len(found) > 1:
        raise ManifestError(
            directory,
            f"has more than one kustomization file ({', '.join(found)})",
            hint="keep one, as kustomize itself refuses this",
        )
    return found[0]


def kustomization_file(directory: Path, *, shown: str | None = None) -> Path:
    """The kustomization file kustomize reads in ``directory`` (a work tree).

    Args:
        directory: The directory.
        shown: How messages name it (default: ``directory`` itself), e.g. its
            path in the repository rather than in a temporary clone.

    Raises:
        ManifestError: no such directory, no kustomization in it, or more than one.
    """
    # a link counts (its target may not be checked out): the writer refuses it by name
    present = [
        n for n in KUSTOMIZATION_NAMES if (directory / n).is_file() or (directory / n).is_symlink()
    ]
    name = choose_kustomization(
        shown if shown is not None else str(directory), present, exists=directory.is_dir()
    )
    return directory / name


def read_images(text: str, path: str = "kustomization.yaml") -> list[ImageEntry]:
    """Every entry of the ``images:`` list, in file order.

    Raises:
        ManifestError: malformed YAML or a malformed ``images:`` list.
    """
    return read_entries(text, path)


def find_image(text: str, name: str, path: str = "kustomization.yaml") -> ImageEntry | None:
    """The entry for image ``name``, or ``None``."""
    found = [entry for entry in read_images(text, path) if entry.name == name]
    if len(found) > 1:
        raise ManifestError(path, f"lists image {name!r} {len(found)} times; keep one entry")
    return found[0] if found else None


def set_image(text: str, edit: ImageEdit, *, path: str = "kustomization.yaml") -> str:
    """Set ``edit`` in a kustomization's ``images:`` list.

    Args:
        text: The kustomization file's text.
        edit: The entry to set.
        path: The file's path, for error messages.

    Returns:
        The new text; equal to ``text`` when the entry already says the same.

    Raises:
        ManifestError: malformed YAML, not a Kustomization, or an entry this
            editor cannot change safely (see :mod:`conveyor.gitops.imagelist`).
    """
    return write_entry(text, edit.resolve(find_image(text, edit.name, path)), path)


def with_digest(edit: ImageEdit, digest: str | None) -> ImageEdit:
    """``edit`` with another digest (convenience for callers pinning after publish)."""
    return replace(edit, digest=digest)


__all__ = [
    "KUSTOMIZATION_NAMES",
    "PRESERVE",
    "ImageEdit",
    "ImageEntry",
    "choose_kustomization",
    "find_image",
    "kustomization_file",
    "read_images",
    "set_image",
    "with_digest",
]
