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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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

    def __post_init__(self) -> None:
        parts = self.path.replace("\\", "/").split("/")
        if self.path.startswith("/") or ".." in parts or not self.path:
            raise ValueError(f"{self.path!r} must be a path inside the repository")

    @classmethod
    def of(cls, path: str, function: Callable[[str], str]) -> FileEdit:
        """A file edit from a plain function."""
        return cls(path, FunctionEditor(function))
