"""What ``conveyor doctor`` reports about the podman engine.

Which of podman, buildah and skopeo are installed (with their versions), and
whether podman can actually start a container: a machine can have podman
and still fail at ``podman run`` (an unusable runtime, cgroups, rlimits).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor.errors import ToolMissingError
from conveyor.process import run_process


@dataclass(frozen=True)
class ToolStatus:
    """One tool: where it is and what version it says it is (``None`` if absent)."""

    name: str
    path: str | None
    version: str | None

    @property
    def present(self) -> bool:
        """Whether the tool was found on ``PATH``."""
        return self.path is not None


@dataclass(frozen=True)
class EngineCheck:
    """The podman engine's readiness; ``detail`` says why a container cannot run."""

    tools: Sequence[ToolStatus]
    can_run: bool
    detail: str

    @property
    def ok(self) -> bool:
        """Podman and skopeo are present and a container ran."""
        required = {"podman", "skopeo"}
        return self.can_run and all(t.present for t in self.tools if t.name in required)


async def _version(tool: str, environ: Mapping[str, str] | None) -> ToolStatus:
    path = shutil.which(tool, path=None if environ is None else environ.get("PATH", ""))
    if path is None:
        return ToolStatus(tool, None, None)
    try:
        result = await run_process([path, "--version"], environ=environ, check=False)
    except ToolMissingError:
        return ToolStatus(tool, None, None)
    words = result.stdout.split()
    # "podman version 4.3.1", "skopeo version 1.9.3", "buildah version 1.28.2 (...)"
    version = words[words.index("version") + 1] if "version" in words[:-1] else result.stdout
    return ToolStatus(tool, path, version.strip() or None)


async def check_tools(
    *,
    podman: str = "podman",
    skopeo: str = "skopeo",
    buildah: str = "buildah",
    image: str,
    environ: Mapping[str, str] | None = None,
) -> EngineCheck:
    """Look for the tools and try ``podman run --rm --network none IMAGE true``.

    Args:
        podman: The podman executable.
        skopeo: The skopeo executable.
        buildah: The buildah executable (optional for the engine; reported).
        image: A local image to start; it is not pulled.
        environ: The environment to look in (``os.environ`` when ``None``).

    Returns:
        The tools found and whether a container ran, with the reason if not.
    """
    tools = [await _version(tool, environ) for tool in (podman, buildah, skopeo)]
    if not tools[0].present:
        return EngineCheck(tools, False, "podman is not installed")
    result = await run_process(
        [podman, "run", "--rm", "--pull=never", "--network", "none", image, "true"],
        environ=environ,
        check=False,
    )
    if result.ok:
        return EngineCheck(tools, True, f"podman ran a container from {image}")
    last = result.stderr.strip().splitlines()[-1:] or [f"exit code {result.exit_code}"]
    return EngineCheck(tools, False, f"podman run {image} failed: {last[0]}")
