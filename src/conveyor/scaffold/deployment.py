"""The image names a kustomize base in the repository gives its containers.

The manifest stage pins an image by the name the base Deployment uses
(``images[].name`` in the overlay's kustomization): ``image_name`` in
conveyor.toml must be that name.  When the application's repository holds
its own base (``deploy/base/``, ``k8s/``), ``conveyor init`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.scaffold.dockerfiles import NOT_IMAGES, SKIPPED_DIRS, walk

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"})


@dataclass(frozen=True)
class BaseImages:
    """A kustomization (relative to the repository root) and its containers' image names."""

    directory: str
    names: tuple[str, ...]


def find_bases(directory: Path, toplevel: Path) -> list[BaseImages]:
    """The kustomizations whose own resource files hold workloads, with their image names.

    Those under the application's directory; when it has none, those of the
    whole repository.  Tests, fixtures, examples and docs are not searched.
    """
    for root in dict.fromkeys([directory, toplevel]):
        bases = []
        for path in walk(root, depth=6, skip=SKIPPED_DIRS | NOT_IMAGES, hidden=False):
            if path.name not in KUSTOMIZATION_NAMES:
                continue
            names = _kustomization_images(path)
            if names:
                bases.append(BaseImages(path.parent.relative_to(toplevel).as_posix(), names))
        if bases:
            return bases
    return []


def strip_reference(image: str) -> str:
    """The image's name without its tag or digest (``ghcr.io/a/b:1.0`` -> ``ghcr.io/a/b``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: len(name) - len(last[-1])] + last[-1].split(":", 1)[0]
    return name


def _load_all(path: Path) -> list[Any]:
    try:
        return [d for d in YAML(typ="safe").load_all(path.read_text("utf-8")) if d]
    except (YAMLError, UnicodeDecodeError, OSError):
        return []


def _kustomization_images(path: Path) -> tuple[str, ...]:
    documents = _load_all(path)
    kustomization = documents[0] if documents and isinstance(documents[0], dict) else {}
    names: list[str] = []
    for resource in kustomization.get("resources") or []:
        file = path.parent / str(resource)
        if not file.is_file():
            continue  # a directory (another base) or a remote resource
        for document in _load_all(file):
            for image in _container_images(document):
                name = strip_reference(image)
                if name not in names:
                    names.append(name)
    return tuple(names)


def _container_images(document: object) -> list[str]:
    if not isinstance(document, dict) or document.get("kind") not in _WORKLOADS:
        return []
    spec: Any = document.get("spec") or {}
    if document["kind"] == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    pod = spec if document["kind"] == "Pod" else (spec.get("template") or {}).get("spec") or {}
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return [str(c["image"]) for c in containers if isinstance(c, dict) and c.get("image")]
