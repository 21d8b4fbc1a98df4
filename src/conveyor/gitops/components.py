"""Which overlays use a kustomize Component: where an edit of a component is seen.

A ``kind: Component`` renders nothing on its own; an image pinned there shows
only in the kustomizations that include it (directly, or through a base or
another component).

API:
    ``is_component(text, path) -> bool``: whether a kustomization file is a Component.
    ``component_users(component, root) -> list[Path]``: every kustomization
    directory under ``root`` (not itself a Component) whose ``resources``,
    ``bases`` or ``components`` reach ``component``, in path order.
    ``search_root(directory) -> Path``: where to look: the git work tree
    holding ``directory``, else its grandparent (``components/x`` → the tree
    holding ``components/`` and the overlays beside it).
    ``render_targets(root, directory) -> list[Path]``: what to render to see
    an edit of ``directory`` in the work tree ``root``: the directory itself,
    or - for a Component - every kustomization that includes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.errors import ManifestError
from conveyor.gitops.closure import local_references
from conveyor.gitops.kustomization import KUSTOMIZATION_NAMES, kustomization_file
from conveyor.gitops.paths import inside


def is_component(text: str, path: str = "kustomization.yaml") -> bool:
    """Whether the kustomization text declares ``kind: Component`` (in its first document)."""
    try:
        documents = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError:
        return False
    first = documents[0] if documents else None
    return isinstance(first, dict) and first.get("kind") == "Component"


def search_root(directory: Path) -> Path:
    """The tree to search for users of the component in ``directory``."""
    resolved = directory.resolve()
    for parent in (resolved, *resolved.parents):
        if (parent / ".git").exists():
            return parent
    return resolved.parent.parent if resolved.parent != resolved else resolved


def _kustomizations(root: Path) -> dict[str, str]:
    """Every kustomization under ``root``: its directory (relative, ``""`` = root) and text."""
    found: dict[str, str] = {}
    for name in KUSTOMIZATION_NAMES:
        for file in root.rglob(name):
            relative = file.parent.relative_to(root)
            if ".git" in relative.parts or not file.is_file():
                continue
            key = relative.as_posix() if relative.parts else ""
            try:
                found.setdefault(key, file.read_bytes().decode("utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
    return found


def component_users(component: Path, root: Path) -> list[Path]:
    """The kustomizations under ``root`` that include ``component`` (see module doc)."""
    root = root.resolve()
    try:
        target = component.resolve().relative_to(root).as_posix()
    except ValueError:
        return []
    texts = _kustomizations(root)
    edges = {d: set(local_references(d, t)) & set(texts) for d, t in texts.items()}

    def reaches(start: str) -> bool:
        seen, pending = {start}, [start]
        while pending:
            for nxt in edges.get(pending.pop(), ()):
                if nxt == target:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    pending.append(nxt)
        return False

    users: Iterable[str] = (
        d for d, t in sorted(texts.items()) if d != target and not is_component(t) and reaches(d)
    )
    return [root / d if d else root for d in users]


def render_targets(root: Path, directory: str) -> list[Path]:
    """The directories to render to see an edit of ``directory`` (relative to ``root``).

    Raises:
        ManifestError: ``directory`` holds no kustomization, or is a Component
            that no kustomization in the work tree includes (a sparse work tree
            may lack them: the caller checks out every file and asks again).
    """
    path = inside(root, directory)
    file = kustomization_file(path, shown=directory)
    inside(root, file.relative_to(root).as_posix())  # a link out of the clone is not read
    if not is_component(file.read_bytes().decode("utf-8", "replace"), str(file)):
        return [path]
    users = component_users(path, root)
    if not users:
        raise ManifestError(
            directory,
            "is a Component and no kustomization in the repository includes it, "
            "so no render can show the edit",
            hint="point the environment's path at an overlay, or include the component in one",
        )
    return users
