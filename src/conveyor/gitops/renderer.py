"""Rendering a kustomization with the real kustomize (``kubectl kustomize``).

API:
    ``render(directory, *, kubectl="kubectl") -> str``: the rendered multi-document
    YAML.  This module is the one place that runs kubectl on the host.
    ``Renderer``: the shape of a renderer, ``(directory) -> str``; the stages
    receive one in their context (this ``render`` unless told otherwise: the
    Dagger module renders in a kubectl container, see
    :mod:`conveyor.engines.dagger_render`).

Raises :class:`ToolMissingError` when kubectl is not installed and
:class:`ManifestError` (naming the directory, with kustomize's own message)
when kustomize cannot build it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from conveyor.errors import ConfigError, ManifestError, ToolMissingError
from conveyor.gitops.kustomization import kustomization_file
from conveyor.gitops.render_error import render_failure
from conveyor.pipeline.toolcalls import tool_call

RENDER_TIMEOUT = 120.0

Renderer = Callable[[Path], str]
"""Renders the kustomization in a directory; raises like :func:`render`."""


def render(directory: Path | str, *, kubectl: str = "kubectl", enable_helm: bool = False) -> str:
    """Render the kustomization in ``directory``.

    Args:
        directory: The kustomization's directory.
        kubectl: The kubectl command.
        enable_helm: Render ``helmCharts`` (``--enable-helm``; helm must be on PATH).

    Raises:
        ToolMissingError: kubectl is not on PATH.
        RenderUnavailableError: it cannot be rendered here (a remote base
            offline, helmCharts without ``enable_helm`` or without helm).
        ManifestError: there is no kustomization, or kustomize failed to build it.
    """
    path = Path(directory)
    kustomization_file(path)
    binary = shutil.which(kubectl)
    if binary is None:
        raise ToolMissingError(
            kubectl, hint="install kubectl (it bundles kustomize), e.g. from your distribution"
        )
    argv = [binary, "kustomize", *(["--enable-helm"] if enable_helm else []), str(path)]
    try:
        with tool_call(argv) as exited:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=RENDER_TIMEOUT, check=False
            )
            exited(done.returncode)
    except subprocess.TimeoutExpired as error:
        raise ManifestError(path, f"kustomize did not finish in {RENDER_TIMEOUT:g}s") from error
    if done.returncode != 0:
        raise render_failure(path, done.stderr, done.returncode)
    return done.stdout


def helm_render(renderer: Renderer, environment: str) -> Renderer:
    """``renderer`` with ``--enable-helm`` (only the host's kubectl runs helm).

    Raises:
        ConfigError: ``renderer`` is not the host's (the Dagger module's
            kubectl container has no helm).
    """
    if renderer is not render:
        raise ConfigError(
            None,
            f"gitops.environments.{environment}.enable_helm",
            "needs the host's kubectl and helm; this run renders elsewhere (a container)",
            hint="run the manifest stage on the host (conveyor run), or render the chart "
            "into the repository",
        )
    return functools.partial(render, enable_helm=True)
