"""What kustomize says when it cannot build a directory, cleaned and classified.

``kubectl kustomize`` prints its error through klog, e.g.::

    E1202 03:39:32.347391   11040 run.go:72] "command failed" err="accumulating resources: ..."

API:
    ``clean(stderr) -> str``: kustomize's own message, without log prefixes,
    the ``"command failed" err=`` wrapper or its quoting.
    ``render_failure(directory, stderr, returncode) -> ManifestError``: the
    error to raise; a :class:`RenderUnavailableError` when the build cannot
    run here for a reason outside the files (a remote base that cannot be
    fetched, ``helmCharts`` without ``--enable-helm``, no ``helm`` binary),
    with a hint that says how to pass ``--enable-helm`` in Conveyor.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from conveyor.errors import ManifestError, RenderUnavailableError

_KLOG = re.compile(r"^[EWIF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [\w.-]+:\d+\] ?")
_WRAPPED = re.compile(r'^"command failed" err=(?P<err>".*")$')
_HELM_DISABLED = "must specify --enable-helm"
_HELM_MISSING = (
    'exec: "helm"',
    "helm: executable file not found",
    "unable to find helm",
    "no helm",
)
_REMOTE = (
    "dial tcp",
    "no such host",
    "Temporary failure in name resolution",
    "failed to run '/usr/bin/git",
    "git cmd",
    "couldn't fetch",
    "network is unreachable",
    "i/o timeout",
    "TLS handshake timeout",
    "connection refused",
)
HELM_HINT = (
    "helmCharts need helm: pass --enable-helm (conveyor manifest set-image, conveyor "
    "policy check) or set gitops.environments.<env>.enable_helm = true, with helm on PATH"
)


def clean(stderr: str) -> str:
    """kustomize's message from ``kubectl kustomize``'s (or ``kustomize``'s) stderr."""
    lines = []
    for raw in stderr.strip().splitlines():
        line = _KLOG.sub("", raw.strip())
        if line in (">", '"command failed" err=<'):
            continue  # klog's frame around a multi-line value
        wrapped = _WRAPPED.match(line)
        if wrapped:
            try:
                line = str(json.loads(wrapped["err"]))
            except ValueError:
                line = wrapped["err"].strip('"')
        line = line.removeprefix("Error: ").strip()
        if line.startswith(("Usage:", "Examples:", "Flags:", "Global Flags:")):
            break  # kustomize's own usage text follows its error
        if line:
            lines.append(line)
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def render_failure(directory: Path | str, stderr: str, returncode: int) -> ManifestError:
    """The error for a failed build of ``directory``."""
    detail = clean(stderr) or f"exit {returncode}"
    if _HELM_DISABLED in detail:
        return RenderUnavailableError(
            directory,
            "uses helmCharts, which kustomize renders only with --enable-helm",
            reason="helm charts (--enable-helm is off)",
            hint=HELM_HINT,
        )
    if any(marker in detail for marker in _HELM_MISSING):
        return RenderUnavailableError(
            directory,
            f"uses helmCharts and helm cannot run here: {detail}",
            reason="helm charts (no helm binary)",
            hint="install helm (v3) on PATH, or render where it is",
        )
    if any(marker in detail for marker in _REMOTE):
        return RenderUnavailableError(
            directory,
            f"a remote resource cannot be fetched from here: {detail}",
            reason="a remote base or resource",
            hint="render where the remote is reachable, or vendor the base into the repository",
        )
    return ManifestError(directory, f"kustomize could not build it: {detail}")
