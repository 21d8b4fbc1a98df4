"""What pinning an image in one environment edits: its kustomization, Flux setters, Helm values.

API:
    ``environment_edits(config, environment, ref) -> list[FileEdit]``: every
    edit that points ``environment`` at ``ref`` (``registry/repo:tag@digest``),
    in one commit: the ``images:`` entry of the environment directory's
    kustomization file (whichever of ``kustomization.yaml``, ``.yml`` or
    ``Kustomization`` it has, found once checked out; unless
    ``kustomize = false``), each configured Flux setter file and each Helm
    values image block.
    ``reference_of(entry)``: the pinned image an ``images:`` entry produces.
"""

from __future__ import annotations

from conveyor.config.models import Config
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.helm import ValuesEdit
from conveyor.gitops.kustomization import ImageEdit, ImageEntry
from conveyor.gitops.setters import SetterEdit
from conveyor.policy.reference import ImageReference, parse


def environment_edits(config: Config, environment: str, ref: ImageReference) -> list[FileEdit]:
    """Every file edit that pins ``environment`` to ``ref``, kustomization first."""
    assert config.gitops is not None
    env = config.gitops.environments[environment]
    edits: list[FileEdit] = []
    if env.kustomize:
        pin = ImageEdit.pin(config.image_name(environment), ref)
        edits.append(FileEdit.kustomization(env.path, pin))
    edits += [FileEdit(s.file, SetterEdit.pin(s.policy, ref)) for s in env.flux_setters]
    edits += [
        FileEdit(h.file, ValuesEdit(tuple(h.key.split(".")), ref.name, ref.tag, ref.digest))
        for h in env.helm_values
    ]
    return edits


def companion_edits(config: Config, environment: str, ref: ImageReference) -> list[FileEdit]:
    """The Flux setter and Helm values edits only (what goes with a kustomization edit)."""
    return [
        e
        for e in environment_edits(config, environment, ref)
        if not isinstance(e.editor, ImageEdit)
    ]


def reference_of(entry: ImageEntry) -> ImageReference:
    """The image an ``images:`` entry produces, as a reference."""
    return parse(entry.format())
