"""What every delivery stage receives: configuration, engine, source, artifacts.

Also the two seams of the GitOps stages: how a kustomization is rendered
(``render``: the host's kubectl unless a runner says otherwise) and where the
manifest repository is cloned (``workdir``).  The Dagger module renders in a
kubectl container, which reads the clone from the module's working directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.changes import UNKNOWN, Changes
from conveyor.config.models import Config, ImageSpec
from conveyor.gitops.renders import RenderStore
from conveyor.pipeline.journal import Journal
from conveyor.secrets import Redactor, Secret

if TYPE_CHECKING:  # describing a pipeline (graph, plan) loads no engine's values
    from conveyor.engines.port import BuiltImage, Engine, RegistryAuth
    from conveyor.gitops.renderer import Renderer


def render(directory: Path) -> str:
    """:func:`conveyor.gitops.renderer.render`, imported when first used (it loads ruamel.yaml)."""
    from conveyor.gitops.renderer import render as kubectl_render  # noqa: PLC0415 - see above

    return kubectl_render(directory)


HOST_RENDERER = "runs_on_host"
"""The attribute that marks a renderer as the host's kubectl (``helm_render`` may add helm)."""
setattr(render, HOST_RENDERER, True)


@dataclass(frozen=True)
class DeliveryContext:
    """The inputs shared by the stages of one run.

    Attributes:
        config: The validated configuration.
        engine: The container engine (Podman or Dagger) behind the port.
        sha: The full git SHA of the source: the image tag.
        artifacts: This run's directory for reports (JUnit, SARIF, trivy.json, summary).
        redactor: Masks every secret value in text that is shown.
        registry_auth: Credentials for the registry, when configured.
        git_token: The manifest repository token, when configured.
        today: The date ignore-list expiries are compared with.
        journal: Every stage's result as the run resolves it, for the report
            stage; a runner passes it among the scheduler's hooks.
        render: Renders a kustomization directory (manifest and policy
            stages).  Called from a worker thread, never on the event loop.
            Default: ``kubectl kustomize`` on this machine.
        workdir: Where the manifest repository is cloned (default: the
            system's temp directory); a renderer that reads the clone from
            elsewhere than this machine's filesystem needs it there.
        changes: The files this commit changed (``--changed-since``, or what
            CI says); stages and images with ``paths`` run only when one
            of them changed.  Default: unknown, everything runs.
        images: The images this run delivers (``--image``, one job of a
            fan-out); ``None``: every image.
        renders: What the manifest stage rendered for the commit it pushed,
            by tree: the policy stage checks it when the branch tip is that
            commit, instead of cloning and rendering it again.
    """

    config: Config
    engine: Engine
    sha: str
    artifacts: Path
    redactor: Redactor = field(default_factory=Redactor)
    registry_auth: RegistryAuth | None = None
    git_token: Secret | None = None
    today: date = field(default_factory=date.today)
    journal: Journal = field(default_factory=Journal, compare=False)
    render: Renderer = field(default=render, compare=False)
    workdir: Path | None = None
    changes: Changes = UNKNOWN
    images: frozenset[str] | None = None
    renders: RenderStore = field(default_factory=RenderStore, compare=False)

    @property
    def short_sha(self) -> str:
        return self.sha[:12]

    @property
    def address(self) -> str:
        """Where the (first) image is published: ``registry/repository:<full sha>``."""
        return self.image_address(self.config.image_spec(None))

    def image_address(self, image: ImageSpec) -> str:
        """Where ``image`` is published: ``registry/<its repository>:<full sha>``."""
        return self.config.image_address(image, self.sha)

    def stage_dir(self, stage: str) -> Path:
        path = self.artifacts / stage
        path.mkdir(parents=True, exist_ok=True)
        return path


UNPUBLISHABLE = "image.unpublishable"
"""The build output that says why publish must refuse the image (it is not the commit)."""


def built_image(outputs: Mapping[str, str]) -> BuiltImage:
    """The image the build stage described in its outputs."""
    from conveyor.engines.port import BuiltImage  # noqa: PLC0415 - see TYPE_CHECKING above

    platforms = tuple(p for p in outputs.get("image.platforms", "").split(",") if p)
    return BuiltImage(
        id=outputs["image.id"], local_ref=outputs["image.local_ref"], platforms=platforms
    )
