"""Every container image of rendered Kubernetes manifests, checked against the policy.

API:
    ``workload_images(rendered) -> list[FoundImage]``: the ``image`` of every
    container, init container and ephemeral container in Pods, Deployments,
    StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs of a multi-document
    YAML text (what ``kubectl kustomize`` prints).
    ``check_images(rendered, policy) -> list[Violation]``: every rule broken.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.config.models import PolicyConfig
from conveyor.errors import ManifestError
from conveyor.policy.rules import Violation, check_reference

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class FoundImage:
    """An image and where it was found: ``Kind/namespace/name container``."""

    image: str
    where: str


def _pod_spec(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    kind = document.get("kind")
    spec = document.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template") if isinstance(spec, Mapping) else None
    return (template or {}).get("spec") if isinstance(template, Mapping) else None


def _documents(rendered: str, source: str) -> Iterator[Mapping[str, Any]]:
    try:
        for document in YAML(typ="safe").load_all(rendered):
            if isinstance(document, Mapping):
                if document.get("kind") == "List":
                    yield from (i for i in document.get("items") or [] if isinstance(i, Mapping))
                else:
                    yield document
    except YAMLError as exc:
        raise ManifestError(source, f"rendered manifests are not valid YAML: {exc}") from exc


def workload_images(rendered: str, *, source: str = "rendered manifests") -> list[FoundImage]:
    """The image of every container in the rendered manifests, in document order."""
    found: list[FoundImage] = []
    for document in _documents(rendered, source):
        pod = _pod_spec(document)
        if not pod:
            continue
        meta = document.get("metadata") or {}
        resource = "/".join(
            str(p) for p in (document.get("kind"), meta.get("namespace"), meta.get("name")) if p
        )
        for key in _CONTAINER_LISTS:
            for container in pod.get(key) or []:
                if isinstance(container, Mapping) and container.get("image"):
                    where = f"{resource} {key[:-1]} {container.get('name', '?')}"
                    found.append(FoundImage(str(container["image"]), where))
    return found


def check_images(rendered: str, policy: PolicyConfig, *, source: str = "") -> list[Violation]:
    """Every policy violation of every workload image in ``rendered``."""
    violations: list[Violation] = []
    for item in workload_images(rendered, source=source or "rendered manifests"):
        where = f"{source}: {item.where}" if source else item.where
        violations.extend(check_reference(item.image, policy, where=where))
    return violations
