"""What an update changes: a file of the manifest repository and an editor for it.

API:
    :class:`Editor` is the protocol every text editor follows
    (:class:`~conveyor.gitops.kustomization.ImageEdit`,
    :class:`~conveyor.gitops.setters.SetterEdit`,
    :class:`~conveyor.gitops.helm.ValuesEdit`): ``apply(text, path) -> text``,
    ``current(text, path)`` (the image value the file has, ``None`` if none)
    and ``target(text, path)`` (the value ``apply`` would leave).
    ``FileEdit(path, editor)`` pairs it with a repository-relative path;
    ``FileEdit.of(path, function)`` wraps a plain ``text -> text`` function
    (such an edit has no image value, so it never counts as a conflict).
    ``FileEdit.kustomization(directory, editor)`` edits a directory's
    kustomization file, whatever kustomize calls it there
    (``kustomization.yaml``, ``.yml`` or ``Kustomization``): ``locate(root)``
    names the real file once the directory is checked out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, runtime_checkable

from conveyor.gitops.kustomization import KUSTOMIZATION_NAMES, kustomization_file


@runtime_checkable
class Editor(Protocol):
    """A pure edit of one file's text."""

    def apply(self, text: str, path: str) -> str:
        """The edited text (equal to ``text`` when there is nothing to do)."""
        ...

    def current(self, text: str, path: str) -> str | None:
        """The image value ``text`` holds now (``None``: not present)."""
        ...

    def target(self, text: str, path: str) -> str:
        """The image value ``apply`` leaves in ``text``."""
        ...


@dataclass(frozen=True)
class FunctionEditor:
    """A plain ``text -> text`` function as an :class:`Editor` without image values."""

    function: Callable[[str], str]

    def apply(self, text: str, path: str) -> str:
        """Run the function."""
        return self.function(text)

    def current(self, text: str, path: str) -> str | None:
        """Plain functions carry no image value."""
        return None

    def target(self, text: str, path: str) -> str:
        """Plain functions carry no image value."""
        return ""


@dataclass(frozen=True)
class FileEdit:
    """An editor for the file at ``path`` (relative to the repository root, ``/``-separated)."""

    path: str
    editor: Editor
    find_kustomization: bool = False
    """``path`` stands for its directory's kustomization file: see :meth:`locate`."""

    def __post_init__(self) -> None:
        parts = self.path.replace("\\", "/").split("/")
        if self.path.startswith("/") or ".." in parts or not self.path:
            raise ValueError(f"{self.path!r} must be a path inside the repository")

    @classmethod
    def of(cls, path: str, function: Callable[[str], str]) -> FileEdit:
        """A file edit from a plain function."""
        return cls(path, FunctionEditor(function))

    @classmethod
    def kustomization(cls, directory: str, editor: Editor) -> FileEdit:
        """An edit of ``directory``'s kustomization file, found when checked out."""
        directory = directory.strip("/")
        path = f"{directory}/{KUSTOMIZATION_NAMES[0]}" if directory else KUSTOMIZATION_NAMES[0]
        return cls(path, editor, find_kustomization=True)

    def locate(self, root: Path) -> FileEdit:
        """This edit with the real file name, in a work tree at ``root``.

        Raises:
            ManifestError: the directory holds no kustomization, or more than one.
        """
        if not self.find_kustomization:
            return self
        directory = PurePosixPath(self.path).parent.as_posix()
        shown = "." if directory in ("", ".") else directory
        found = kustomization_file(root / PurePosixPath(directory), shown=shown)
        name = found.name if directory in ("", ".") else f"{directory}/{found.name}"
        return FileEdit(name, self.editor)
