"""What the guarded writer rendered for a commit it pushed, for a later check of that commit.

API::

    Rendered(source, text)                          # one kustomization, rendered
    RenderStore()                                   # one per run (the delivery context)
        .record(commit, tree, path, renders)        # by the writer, after its push
        .find(commit, path) -> Renders | None       # by the policy stage, for the tip

The ``manifest`` stage renders the environment it edits before it commits
(:func:`conveyor.gitops.writer.write_environment`); the ``policy`` stage then
checks the branch tip.  When the tip is the very commit the writer pushed, the
writer's render *is* the render of the tip: the commit names its tree, and
the work tree the writer rendered held exactly that tree's files (a fresh
clone of the parent, with the edited files written and then committed as they
were).  The store keeps the renders by tree id and knows which commit carries
which tree; a commit it was not told about finds nothing, and the caller
renders a clone as before.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the policy's YAML machinery is not imported with the context
    from conveyor.policy.workloads import FoundImage


@dataclass(frozen=True)
class Rendered:
    """One kustomization directory rendered.

    Attributes:
        source: The directory, relative to the repository root (``.`` for the root).
        text: kustomize's output: multi-document YAML.
        images: The images ``text`` holds
            (:func:`~conveyor.policy.workloads.workload_images`), read once.
    """

    source: str
    text: str
    images: tuple[FoundImage, ...]


@dataclass(frozen=True)
class Renders:
    """An environment's renders at one tree."""

    commit: str
    tree: str
    renders: tuple[Rendered, ...]


class RenderStore:
    """Renders of pushed commits, by tree id and environment path (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trees: dict[str, str] = {}
        self._renders: dict[tuple[str, str], tuple[Rendered, ...]] = {}

    def record(self, commit: str, tree: str, path: str, renders: Sequence[Rendered]) -> None:
        """Keep ``renders`` of environment ``path`` as the render of ``commit``'s ``tree``.

        Args:
            commit: The commit pushed (its full id).
            tree: That commit's tree id (``COMMIT^{tree}``).
            path: The environment's directory, as the configuration names it.
            renders: Every kustomization rendered to see the environment.
        """
        with self._lock:
            self._trees[commit] = tree
            self._renders[(tree, path)] = tuple(renders)

    def find(self, commit: str, path: str) -> Renders | None:
        """The renders of environment ``path`` at ``commit``'s tree, or ``None`` when not kept."""
        with self._lock:
            tree = self._trees.get(commit)
            renders = None if tree is None else self._renders.get((tree, path))
        if tree is None or renders is None:
            return None
        return Renders(commit, tree, renders)


__all__ = ["RenderStore", "Rendered", "Renders"]
