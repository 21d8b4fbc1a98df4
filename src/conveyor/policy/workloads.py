"""Every container image of rendered Kubernetes manifests, checked against the policy.

API:
    ``inspect(rendered, source=...) -> Inspection``: the images found and what
    could not be inspected, in document order.
    ``workload_images(rendered) -> list[FoundImage]``: the images only.
    ``check_images(rendered, policy) -> list[Violation]``: every rule broken.

Where images are found:

- every ``containers``, ``initContainers`` and ``ephemeralContainers`` list,
  wherever it sits in a document: Pods, the workload kinds, a PodTemplate's
  ``template.spec``, a CronJob's job template, and custom resources with a pod
  spec or a ``containers`` list of their own (an Argo Rollout, a Knative
  Service...), as kustomize's ``images:`` transformer finds them;
- the values of a Flux ``HelmRelease`` (``spec.values``) and of a k3s/RKE2
  ``HelmChart`` (``spec.valuesContent``, ``spec.set``): every ``image`` key
  holding a reference, or a mapping of ``registry``/``repository``/``tag``/
  ``digest`` (``image.repository`` + ``image.tag`` and the like).

What cannot be inspected is listed, never passed silently: images a chart's
own templates and defaults set, values read from ConfigMaps or Secrets
(``valuesFrom``), an ``image`` mapping without a tag (the chart's default
applies), and ``image`` fields of custom resources outside a container list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from conveyor.config.models import PolicyConfig
from conveyor.errors import ManifestError
from conveyor.policy.rules import Violation, check_reference

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_HELM_RELEASE = "HelmRelease"
_HELM_CHART = "HelmChart"


@dataclass(frozen=True)
class FoundImage:
    """An image and where it was found: ``Kind/namespace/name container``."""

    image: str
    where: str


@dataclass
class Inspection:
    """What the rendered manifests hold: images, and what could not be looked into."""

    images: list[FoundImage] = field(default_factory=list)
    uninspected: list[str] = field(default_factory=list)


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


def _resource(document: Mapping[str, Any]) -> str:
    meta = document.get("metadata") or {}
    if not isinstance(meta, Mapping):
        meta = {}
    parts = (document.get("kind"), meta.get("namespace"), meta.get("name"))
    return "/".join(str(p) for p in parts if p)


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) under ``node``, parents before children."""
    yield path, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, f"[{index}]"))


def _containers(document: Mapping[str, Any], resource: str, found: Inspection) -> None:
    in_lists: set[tuple[str, ...]] = set()
    for path, value in _walk(document):
        if not (path and path[-1] in _CONTAINER_LISTS and isinstance(value, list)):
            continue
        for index, container in enumerate(value):
            if isinstance(container, Mapping) and isinstance(container.get("image"), str):
                in_lists.add((*path, f"[{index}]", "image"))
                where = f"{resource} {path[-1][:-1]} {container.get('name', '?')}"
                found.images.append(FoundImage(str(container["image"]), where))
    if document.get("kind") in (_HELM_RELEASE, _HELM_CHART):
        return  # their 'image' keys are values, read below
    for path, value in _walk(document):
        if path and path[-1] == "image" and isinstance(value, str) and path not in in_lists:
            found.uninspected.append(
                f"{resource}: {'.'.join(path)} = {value!r} is not in a container list "
                "(kustomize's images: do not change it; not checked)"
            )


def _value_image(value: Mapping[str, Any]) -> tuple[str | None, str]:
    """The reference an ``image:`` values mapping makes, or why there is none."""
    repository = value.get("repository") or value.get("name")
    if not isinstance(repository, str) or not repository:
        return None, "has no repository"
    registry = value.get("registry")
    ref = f"{registry}/{repository}" if isinstance(registry, str) and registry else repository
    tag, digest = value.get("tag"), value.get("digest")
    if tag in (None, "") and digest in (None, ""):
        return None, f"(repository {ref}) has no tag or digest: the chart's default applies"
    if tag not in (None, ""):
        ref += f":{tag}"
    if digest not in (None, ""):
        ref += f"@{digest}"
    return ref, ""


def _values(values: Any, resource: str, origin: str, found: Inspection) -> None:
    for path, value in _walk(values):
        if not path or path[-1] != "image":
            continue
        where = f"{resource} {origin}.{'.'.join(path)}"
        if isinstance(value, str) and value:
            found.images.append(FoundImage(value, where))
        elif isinstance(value, Mapping):
            ref, why = _value_image(value)
            if ref is not None:
                found.images.append(FoundImage(ref, where))
            else:
                found.uninspected.append(f"{where} {why}")


def _helm(document: Mapping[str, Any], resource: str, found: Inspection, source: str) -> None:
    spec = document.get("spec") or {}
    if not isinstance(spec, Mapping):
        return
    kind = document.get("kind")
    if kind == _HELM_RELEASE:
        _values(spec.get("values") or {}, resource, "spec.values", found)
        if spec.get("valuesFrom"):
            found.uninspected.append(
                f"{resource}: spec.valuesFrom (values from ConfigMaps or Secrets) is not read"
            )
    else:
        content = spec.get("valuesContent")
        if isinstance(content, str) and content.strip():
            try:
                parsed = YAML(typ="safe").load(content)
            except YAMLError:
                found.uninspected.append(f"{resource}: spec.valuesContent is not valid YAML")
            else:
                _values(parsed or {}, resource, "spec.valuesContent", found)
        settings = spec.get("set")
        if isinstance(settings, Mapping):
            nested: dict[str, Any] = {}
            for dotted, value in settings.items():
                node = nested
                *parents, last = str(dotted).split(".")
                for part in parents:
                    node = node.setdefault(part, {})
                    if not isinstance(node, dict):
                        break
                else:
                    node[last] = value
            _values(nested, resource, "spec.set", found)
    found.uninspected.append(
        f"{resource}: images the chart's own templates and defaults set are not inspected "
        "(render the chart with kustomize helmCharts and --enable-helm to check them)"
    )


def inspect(rendered: str, *, source: str = "rendered manifests") -> Inspection:
    """The images of the rendered manifests and what could not be inspected."""
    found = Inspection()
    for document in _documents(rendered, source):
        resource = _resource(document)
        _containers(document, resource, found)
        if document.get("kind") in (_HELM_RELEASE, _HELM_CHART):
            _helm(document, resource, found, source)
    return found


def workload_images(rendered: str, *, source: str = "rendered manifests") -> list[FoundImage]:
    """The image of every container (and Helm values image) in the rendered manifests."""
    return inspect(rendered, source=source).images


def check_images(rendered: str, policy: PolicyConfig, *, source: str = "") -> list[Violation]:
    """Every policy violation of every image in ``rendered``."""
    found = workload_images(rendered, source=source or "rendered manifests")
    return check_found(found, policy, source=source)


def check_found(
    found: Sequence[FoundImage], policy: PolicyConfig, *, source: str = ""
) -> list[Violation]:
    """Every policy violation of images already found (:func:`workload_images`): one parse."""
    violations: list[Violation] = []
    for item in found:
        where = f"{source}: {item.where}" if source else item.where
        violations.extend(check_reference(item.image, policy, where=where))
    return violations
