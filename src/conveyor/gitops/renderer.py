"""Rendering a kustomization with the real kustomize (``kustomize build`` or ``kubectl kustomize``).

API:
    ``render(directory, *, kubectl="kubectl", kustomize="kustomize") -> str``: the
    rendered multi-document YAML.  This module is the one place that runs
    kustomize and kubectl on the host.
    ``kustomize_command(kubectl="kubectl", kustomize="kustomize") -> list[str]``:
    which of the two renders (see below).
    ``kubectl_version(kubectl="kubectl") -> ProcessResult``: ``kubectl version --client``.
    ``kubectl_environment(environ=None) -> dict``: the environment kubectl gets.
    ``Renderer``: the shape of a renderer, ``(directory) -> str``; the stages
    receive one in their context (this ``render`` unless told otherwise: the
    Dagger module renders in a kubectl container, see
    :mod:`conveyor.engines.dagger_render`).

CI never talks to a cluster: kubectl runs with an empty kubeconfig
(``KUBECONFIG`` is the null device, which also hides ``~/.kube/config``) and
an environment scrubbed to what rendering needs (:data:`KEPT_VARIABLES`) --
some kubectl builds are dispatchers that read the kubeconfig and contact its
API server even for ``kubectl kustomize``.  The directory is passed after
``--``, so no path is read as an option.

Which program renders: the standalone ``kustomize`` when one of major version
5 or later is on ``PATH`` (asked once per process with ``kustomize version``),
else kubectl's built-in copy (``kubectl kustomize``, kustomize v5 in kubectl
1.27 and later).  Both are kustomize v5 and render alike; the standalone
binary starts in about a third of kubectl's time (about 20 ms against 60-70
ms on this project's machines: kubectl initialises its whole client before
it looks at its sub-command), and it reads no kubeconfig.

Raises :class:`ToolMissingError` when kubectl is not installed and
:class:`ManifestError` (naming the directory, with kustomize's own message)
when kustomize cannot build it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from conveyor.errors import CommandTimeoutError, ConfigError, ManifestError, ToolMissingError
from conveyor.gitops.kustomization import kustomization_file
from conveyor.gitops.render_error import render_failure
from conveyor.process import ProcessResult, run

RENDER_TIMEOUT = 120.0
KEPT_VARIABLES = (
    "PATH",  # helm, git (remote bases)
    "HOME",  # helm's and git's own configuration
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "XDG_CACHE_HOME",  # helm's chart cache
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
)
"""The variables kubectl keeps: what rendering (remote bases, helm charts) may need."""
_INSTALL_HINT = "install kubectl (it bundles kustomize), e.g. from your distribution"
_KUSTOMIZE_MAJOR = 5
"""The oldest standalone kustomize used instead of kubectl's (kubectl 1.27+ bundles v5)."""
_VERSION = re.compile(r"v(\d+)\.\d+")


def kubectl_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every kubectl runs in: :data:`KEPT_VARIABLES` and an empty kubeconfig."""
    source = os.environ if environ is None else environ
    kept = {name: source[name] for name in KEPT_VARIABLES if name in source}
    return {**kept, "KUBECONFIG": os.devnull}


def _kubectl(kubectl: str) -> str:
    binary = shutil.which(kubectl)
    if binary is None:
        raise ToolMissingError(kubectl, hint=_INSTALL_HINT)
    return binary


def kubectl_version(kubectl: str = "kubectl", *, timeout: float = 20.0) -> ProcessResult:
    """``kubectl version --client`` in kubectl's environment (the exit code is not checked).

    Raises:
        ToolMissingError: kubectl is not on PATH.
        CommandTimeoutError: it did not answer within ``timeout``.
    """
    return run(
        [_kubectl(kubectl), "version", "--client"],
        environ=kubectl_environment(),
        timeout=timeout,
        check=False,
        install_hint=_INSTALL_HINT,
    )


@functools.cache
def _standalone(binary: str) -> bool:
    """Whether the kustomize at ``binary`` is v5 or later (asked once per process)."""
    try:
        done = run([binary, "version"], environ=kubectl_environment(), timeout=20.0, check=False)
    except (ToolMissingError, CommandTimeoutError):
        return False
    found = _VERSION.search(done.stdout) if done.ok else None
    return found is not None and int(found.group(1)) >= _KUSTOMIZE_MAJOR


def kustomize_command(kubectl: str = "kubectl", kustomize: str | None = "kustomize") -> list[str]:
    """The program and sub-command that render: ``kustomize build`` or ``kubectl kustomize``.

    Args:
        kubectl: The kubectl command.
        kustomize: The standalone kustomize command (``None``: only kubectl).

    Raises:
        ToolMissingError: neither a kustomize v5 nor kubectl is on PATH.
    """
    found = shutil.which(kustomize) if kustomize else None
    if found is not None and _standalone(found):
        return [found, "build"]
    return [_kubectl(kubectl), "kustomize"]


Renderer = Callable[[Path], str]
"""Renders the kustomization in a directory; raises like :func:`render`."""


def render(
    directory: Path | str,
    *,
    kubectl: str = "kubectl",
    kustomize: str | None = "kustomize",
    enable_helm: bool = False,
) -> str:
    """Render the kustomization in ``directory`` (with :func:`kustomize_command`).

    Args:
        directory: The kustomization's directory.
        kubectl: The kubectl command.
        kustomize: The standalone kustomize command (``None``: only kubectl).
        enable_helm: Render ``helmCharts`` (``--enable-helm``; helm must be on PATH).

    Raises:
        ToolMissingError: neither kustomize v5 nor kubectl is on PATH.
        RenderUnavailableError: it cannot be rendered here (a remote base
            offline, helmCharts without ``enable_helm`` or without helm).
        ManifestError: there is no kustomization, or kustomize failed to build it.
    """
    path = Path(directory)
    kustomization_file(path)
    command = kustomize_command(kubectl, kustomize)
    try:
        done = run(
            [*command, *(["--enable-helm"] if enable_helm else []), "--", str(path)],
            environ=kubectl_environment(),
            timeout=RENDER_TIMEOUT,
            check=False,
            install_hint=_INSTALL_HINT,
        )
    except CommandTimeoutError as error:
        raise ManifestError(path, f"kustomize did not finish in {RENDER_TIMEOUT:g}s") from error
    if done.exit_code != 0:
        raise render_failure(path, done.stderr, done.exit_code)
    return done.stdout


def helm_render(renderer: Renderer, environment: str) -> Renderer:
    """``renderer`` with ``--enable-helm`` (only the host's kubectl runs helm).

    Raises:
        ConfigError: ``renderer`` is not the host's (the Dagger module's
            kubectl container has no helm).
    """
    # the host's kubectl: this module's render, or a wrapper marked as running it
    if renderer is not render and not getattr(renderer, "runs_on_host", False):
        raise ConfigError(
            None,
            f"gitops.environments.{environment}.enable_helm",
            "needs the host's kubectl and helm; this run renders elsewhere (a container)",
            hint="run the manifest stage on the host (conveyor run), or render the chart "
            "into the repository",
        )
    return functools.partial(render, enable_helm=True)
