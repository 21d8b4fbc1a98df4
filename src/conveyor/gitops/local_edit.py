"""``conveyor manifest set-image``: set an image in a local kustomization, verified by rendering.

API:
    ``set_image_locally(directory, spec, *, enable_helm=False, render=render) -> LocalEdit``

The edit is written only when kustomize agrees it means something:

- the directory is rendered before and after the edit; a render that worked
  before and fails after is refused (the file is restored);
- some container must use the image: either the render changed, or a
  container renders exactly the image the entry produces (an edit that only
  drops a redundant ``newName`` changes nothing and is fine);
- an image pinned in a ``kind: Component`` is verified through every
  kustomization that includes the component (searched in the git work tree,
  or beside the component's parent directory);
- a directory that cannot be rendered here (a remote base offline, helm
  absent or not enabled) is edited anyway, and the result says what was not
  verified.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.encoding import manifest_text
from conveyor.errors import ManifestError, RenderUnavailableError
from conveyor.gitops.components import component_users, is_component, search_root
from conveyor.gitops.imagelist import ImageEntry
from conveyor.gitops.kustomization import (
    ImageEdit,
    find_image,
    kustomization_file,
    read_images,
    set_image,
)
from conveyor.gitops.renderer import render as host_render
from conveyor.policy.workloads import workload_images

Render = Callable[..., str]


@dataclass(frozen=True)
class LocalEdit:
    """What ``set_image_locally`` did.

    Attributes:
        file: The kustomization file.
        name: The image name.
        before: The entry before (``None``: there was none).
        after: The entry now.
        changed: Whether the file was written.
        verified: The directories whose render confirmed the edit.
        unverified: What could not be checked, one line each.
    """

    file: Path
    name: str
    before: ImageEntry | None
    after: ImageEntry
    changed: bool
    verified: tuple[Path, ...] = ()
    unverified: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """The lines a user sees."""
        if not self.changed:
            now = self.after.format()
            return f"{self.file}: image {self.name} is already {now}; nothing changed"
        old = self.before.format() if self.before is not None else "(not set)"
        lines = [f"{self.file}: image {self.name}: {old} -> {self.after.format()}"]
        if self.verified:
            lines.append("  verified with kustomize: " + ", ".join(map(str, self.verified)))
        lines += [f"  warning: not verified: {why}" for why in self.unverified]
        return "\n".join(lines)


def _split(image: str) -> tuple[str, str | None, str | None]:
    rest, _, digest = image.partition("@")
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


def _uses(rendered: str, entry: ImageEntry) -> bool:
    """Whether a container renders the image ``entry`` produces."""
    name = entry.new_name or entry.name
    for found in workload_images(rendered):
        got_name, tag, digest = _split(found.image)
        if got_name != name:
            continue
        if entry.new_tag is not None and tag != entry.new_tag:
            continue
        if entry.digest is not None and digest != entry.digest:
            continue
        return True
    return False


def _names_used(rendered: str, entries: list[ImageEntry]) -> list[str]:
    """The image names an ``images:`` entry of this kustomization can match.

    A rendered name that one of the file's own entries produced stands for
    that entry's name (the one to write).
    """
    back = {e.new_name: e.name for e in entries if e.new_name}
    names = {_split(found.image)[0] for found in workload_images(rendered)}
    return sorted({back.get(n, n) for n in names})


def _targets(directory: Path, text: str, file: Path) -> tuple[list[Path], list[str]]:
    if not is_component(text, str(file)):
        return [directory], []
    root = search_root(directory)
    users = component_users(directory, root)
    if not users:
        return [], [f"{directory} is a Component and no kustomization under {root} includes it"]
    return users, []


def set_image_locally(
    directory: Path,
    spec: str,
    *,
    enable_helm: bool = False,
    render: Render = host_render,
) -> LocalEdit:
    """Set the image ``spec`` (``kustomize edit set image`` forms) in ``directory``.

    Args:
        directory: The kustomization's directory (an overlay or a Component).
        spec: ``NAME=NEWNAME:TAG@DIGEST``, ``NAME:TAG``, ``NAME@DIGEST``...
        enable_helm: Render ``helmCharts`` (helm must be on PATH).
        render: Renders a directory (``render(dir, enable_helm=...)``).

    Returns:
        What was done and what was verified.

    Raises:
        InvalidReferenceError: ``spec`` has none of kustomize's forms.
        ManifestError: no kustomization; the edit breaks the render; no
            container uses the image (the hint names the names they use).
    """
    edit = ImageEdit.parse(spec)
    if directory.is_file():
        raise ManifestError(
            directory,
            "is a file; pass the directory that holds the kustomization",
            hint=f"conveyor manifest set-image {directory.parent} {spec}",
        )
    file = kustomization_file(directory, shown=str(directory))
    if file.is_symlink():
        # writing through it would change another file, perhaps outside the repository
        raise ManifestError(
            file,
            f"is a symbolic link (to {os.readlink(file)}); Conveyor edits only regular files",
            hint="edit the link's target directory, or commit the file itself",
        )
    text = manifest_text(file.read_bytes(), file)
    new = set_image(text, edit, path=str(file))
    before = find_image(text, edit.name, str(file))
    after = edit.resolve(before)
    if new == text:
        return LocalEdit(file, edit.name, before, after, changed=False)
    targets, unverified = _targets(directory, text, file)

    rendered_before: dict[Path, str] = {}
    for target in targets:
        try:
            rendered_before[target] = render(target, enable_helm=enable_helm)
        except RenderUnavailableError as error:
            unverified.append(f"{target}: {error.problem}")
        except ManifestError as error:
            # broken before the edit: not the edit's doing, but nothing to verify with
            unverified.append(
                f"{target}: kustomize cannot build it even before the edit: {error.problem}"
            )
    file.write_bytes(new.encode("utf-8"))
    try:
        rendered_after = {t: render(t, enable_helm=enable_helm) for t in rendered_before}
        if rendered_before and not any(
            rendered_after[t] != rendered_before[t] or _uses(rendered_after[t], after)
            for t in rendered_before
        ):
            entries = read_images(text, str(file))
            used = sorted(
                {n for t in rendered_before for n in _names_used(rendered_before[t], entries)}
            )
            raise ManifestError(
                directory,
                f"no container in the rendered output uses image {edit.name!r}; "
                "file left unchanged",
                hint="NAME must be an image name the containers use here (after the bases' "
                f"own images: rewrites): {', '.join(used) or 'none'}",
            )
    except ManifestError as error:
        file.write_bytes(text.encode("utf-8"))
        if isinstance(error, RenderUnavailableError) or "file left unchanged" in error.problem:
            raise
        raise ManifestError(
            error.path,
            f"after the edit, {error.problem}; file left unchanged",
            hint=error.hint,
        ) from error
    except BaseException:
        file.write_bytes(text.encode("utf-8"))
        raise
    return LocalEdit(
        file, edit.name, before, after, True, tuple(rendered_before), tuple(unverified)
    )
