"""Rendering a kustomization with ``kubectl kustomize`` in a container, through Dagger.

For the Dagger module: its runtime container has no kubectl, and the manifest
repository it cloned lives in that container's filesystem, not the engine's.
A directory under the module's scratch working directory can be loaded with
``currentModule.workdir(path)`` (``path`` relative to it; the engine refuses
one that escapes it), so the clone must be made there (the stages clone into
``DeliveryContext.workdir``).  The repository that holds the directory is
mounted, without ``.git``, into a pinned kubectl image, and kustomize's stdout
is the rendering; bases elsewhere in the repository (``../../base``) resolve
as they do on the host.

API:
    ``DaggerRenderer(client, workdir, *, image=KUBECTL_IMAGE)`` -- a
    :data:`~conveyor.gitops.renderer.Renderer`: ``renderer(directory) -> str``
    from a worker thread (it waits for the event loop), ``await
    renderer.render(directory)`` on the loop.
    ``kustomize(client, tree, overlay, *, image) -> dagger.Container`` -- the
    lazy chain.

Raises like :func:`conveyor.gitops.renderer.render`: :class:`ManifestError`
naming the directory, with kustomize's own message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import anyio.from_thread
import dagger

from conveyor.engines.dagger_errors import map_dagger_error
from conveyor.errors import ManifestError
from conveyor.gitops.kustomization import kustomization_file
from conveyor.gitops.render_error import render_failure

KUBECTL_IMAGE = "registry.k8s.io/kubectl:v1.32.4"
"""The Kubernetes project's kubectl image (kustomize v5.5 inside), pinned by tag.

The same kubectl minor as the one ``conveyor run`` finds on the machines this
project is tested on; its entrypoint is ``/bin/kubectl``, which is on PATH.
"""

MOUNT = "/manifests"
"""Where the repository holding the rendered directory is mounted."""

EXCLUDE: Sequence[str] = (".git",)
"""Left out of the mount: kustomize reads the work tree only."""


def kustomize(
    client: dagger.Client,
    tree: dagger.Directory,
    overlay: PurePosixPath,
    *,
    image: str = KUBECTL_IMAGE,
) -> dagger.Container:
    """``kubectl kustomize MOUNT/overlay`` in ``image`` with ``tree`` at :data:`MOUNT`."""
    target = str(PurePosixPath(MOUNT) / overlay) if overlay.parts else MOUNT
    return (
        client.container()
        .from_(image)
        .with_mounted_directory(MOUNT, tree)
        .with_exec(["kubectl", "kustomize", target])
    )


class DaggerRenderer:
    """Renders kustomizations under the module's working directory in a kubectl container.

    Args:
        client: The connected dagger-io client (``dag`` in a module).
        workdir: The module's scratch working directory as this process sees
            it (the runtime's current directory); every rendered directory
            must be inside it.
        image: The kubectl image.
    """

    def __init__(self, client: dagger.Client, workdir: Path, *, image: str = KUBECTL_IMAGE) -> None:
        self.client = client
        self.workdir = workdir.resolve()
        self.image = image

    def __call__(self, directory: Path) -> str:
        """Render ``directory`` from a worker thread (the stages call it there).

        Raises:
            ManifestError: see :meth:`render`.
            RuntimeError: called on the event loop's thread (use :meth:`render`).
        """
        return anyio.from_thread.run(self.render, directory)

    async def render(self, directory: Path) -> str:
        """Render the kustomization in ``directory``.

        Raises:
            ManifestError: there is no kustomization, the directory is outside
                the module's working directory, or kustomize failed to build it.
            EngineError, EngineUnavailableError: the engine refused or did not answer.
        """
        path = Path(directory)
        kustomization_file(path)
        root, overlay = self.locate(path)
        tree = self.client.current_module().workdir(str(root), exclude=list(EXCLUDE))
        try:
            return await kustomize(self.client, tree, overlay, image=self.image).stdout()
        except dagger.ExecError as error:
            # kustomize's message without kubectl's log prefixes, as on the host
            raise render_failure(path, error.stderr or "", error.exit_code) from error
        except dagger.DaggerError as error:
            raise map_dagger_error(error) from error

    def locate(self, directory: Path) -> tuple[PurePosixPath, PurePosixPath]:
        """The tree to mount (relative to the working directory) and ``directory`` inside it.

        The tree is the git work tree holding ``directory`` (its bases are
        usually elsewhere in the repository), or the whole working directory
        when it is in none.

        Raises:
            ManifestError: ``directory`` is not inside the working directory.
        """
        resolved = directory.resolve()
        if not resolved.is_relative_to(self.workdir):
            raise ManifestError(
                directory,
                f"is outside the module's working directory {self.workdir}, "
                "so the kubectl container cannot read it",
                hint="clone the manifest repository under the working directory "
                "(DeliveryContext.workdir)",
            )
        root = next(
            (
                parent
                for parent in (resolved, *resolved.parents)
                if parent.is_relative_to(self.workdir) and (parent / ".git").exists()
            ),
            self.workdir,
        )
        return (
            PurePosixPath(root.relative_to(self.workdir).as_posix()),
            PurePosixPath(resolved.relative_to(root).as_posix()),
        )
