"""The work tree of a clone made without a checkout: only the directories asked for.

API::

    checkout_only(git, root, paths) -> set[str]
    SparseTree(git, root, paths, kustomizations=())   # .limit(), .follow(), .widen()

Both use git's cone-mode sparse checkout: a directory comes with everything
under it, and the files directly in the root and in its parent directories
come too.  :class:`SparseTree` adds the kustomize closure of each directory
in ``kustomizations`` (see :func:`conveyor.gitops.closure.kustomize_dirs`)
and keeps the way back to every file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from conveyor.gitops.closure import kustomize_dirs
from conveyor.gitops.git import Git


def directories_of(paths: Iterable[str]) -> set[str]:
    """The directories holding ``paths`` (the root left out: its files are always there)."""
    return {d for d in (str(PurePosixPath(p).parent) for p in paths) if d not in ("", ".")}


def checkout_only(git: Git, root: Path, paths: Iterable[str]) -> set[str]:
    """Check out only the directories of ``paths`` in a clone made without a checkout.

    Returns:
        The directories checked out.
    """
    directories = directories_of(paths)
    git.sparse_checkout(root, directories)
    git.checkout(root)
    return directories


class SparseTree:
    """A sparse work tree for some files and kustomizations, and the way back to every file.

    Args:
        git: Runs git in the clone.
        root: A clone made without a checkout.
        paths: Files whose directories are checked out.
        kustomizations: Directories checked out with their kustomize closure.
    """

    def __init__(
        self, git: Git, root: Path, paths: Iterable[str], kustomizations: Sequence[str] = ()
    ) -> None:
        self.git = git
        self.root = root
        self.own = directories_of(paths)
        self.sparse = tuple(kustomizations)
        self.directories: set[str] = set()
        self.active = True

    def _needed(self) -> set[str]:
        needed = set(self.own)
        for directory in self.sparse:
            needed |= kustomize_dirs(self.git, self.root, directory)
        # files in the root come with every cone; "" would mean everything
        return needed - {""}

    def limit(self) -> None:
        """Right after a clone without checkout: check out only what is needed."""
        self.directories = self._needed()
        self.git.sparse_checkout(self.root, self.directories)
        self.git.checkout(self.root)

    def follow(self) -> None:
        """After a reset to a new tip: widen or narrow to what that tip needs."""
        if not self.active or not self.sparse:
            return  # the files' own directories do not move
        needed = self._needed()
        if needed != self.directories:
            self.directories = needed
            self.git.sparse_checkout(self.root, needed)

    def widen(self) -> bool:
        """Check out every file; ``False`` when that was already so."""
        if not self.active:
            return False
        self.git.sparse_disable(self.root)
        self.active = False
        return True
