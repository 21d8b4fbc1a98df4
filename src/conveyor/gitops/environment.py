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
    ``check_edited_files(root, edits, policy)``: before a commit, the files
    that kustomize does not render (Flux setter and Helm values files, every
    file of a ``kustomize = false`` environment) still parse and the image
    each now holds passes the policy.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.config.models import Config, PolicyConfig
from conveyor.errors import ManifestError
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.helm import ValuesEdit
from conveyor.gitops.kustomization import ImageEdit, ImageEntry
from conveyor.gitops.paths import inside
from conveyor.gitops.setters import SetterEdit
from conveyor.gitops.yamltext import compose
from conveyor.policy.reference import ImageReference, parse
from conveyor.policy.rules import check_reference, raise_for


def environment_edits(
    config: Config, environment: str, ref: ImageReference, *, name: str | None = None
) -> list[FileEdit]:
    """Every file edit that pins ``environment`` to ``ref``, kustomization first.

    ``name`` is the kustomization's ``images[].name`` (default: the ``[app]``
    image's name in that environment).
    """
    assert config.gitops is not None
    env = config.gitops.environments[environment]
    edits: list[FileEdit] = []
    if env.kustomize:
        pin = ImageEdit.pin(name or config.image_name(environment), ref)
        edits.append(FileEdit.kustomization(env.path, pin))
    edits += [
        FileEdit(
            s.file,
            SetterEdit.pin(
                s.policy,
                ref,
                require_digest=config.policy.require_digest,
                tag_digest=s.tag_digest,
            ),
        )
        for s in env.flux_setters
    ]
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


def check_edited_files(root: Path, edits: list[FileEdit], policy: PolicyConfig) -> None:
    """The edited files kustomize does not render parse, and their images pass the policy.

    Args:
        root: The work tree, after the edits.
        edits: The environment's edits (kustomization edits are left to the render).
        policy: The rules the image each file now holds must follow.

    Raises:
        ManifestError: a file is missing or no longer parses.
        PolicyError: the image a file now holds breaks a rule (e.g. no digest).
    """
    for edit in edits:
        if isinstance(edit.editor, ImageEdit):
            continue
        file = inside(root, edit.path)
        try:
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ManifestError(edit.path, f"cannot be read after the edit: {error}") from error
        compose(text, edit.path)  # still YAML
        held = edit.editor.current(text, edit.path)
        if held is None:
            raise ManifestError(
                edit.path,
                "holds no image for this environment after the edit",
                hint="check the flux_setters policy name or the helm_values key",
            )
        raise_for(check_reference(held, policy, where=edit.path))


def reference_of(entry: ImageEntry) -> ImageReference:
    """The image an ``images:`` entry produces, as a reference."""
    return parse(entry.format())
