"""``conveyor doctor``: what this machine has, and whether the configured services answer."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import typer

from conveyor.cli.run import ConfigOption


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True
    present: bool = True
    """False for a tool that is not installed (missing or absent), not one that failed."""


TOOLS = (
    ("podman", "podman engine: run, build, service", False),
    ("skopeo", "podman engine: registry inspection", False),
    ("buildah", "podman engine: builds (podman build uses it)", False),
    ("dagger", "dagger engine: the CLI", False),
    ("git", "manifest repository updates", True),
    ("kubectl", "policy check: kustomize rendering", False),
    ("trivy", "scan stage (runs inside Dagger when that engine is used)", False),
)
VERSION_ARGS = {"dagger": ("version",), "kubectl": ("version", "--client")}
"""How a tool says its version, when not ``--version``."""


def _version(tool: str, path: str) -> tuple[bool, str]:
    """Whether ``tool`` answered its version question, and its first line (or the error)."""
    from conveyor.errors import ConveyorError
    from conveyor.gitops.renderer import kubectl_version
    from conveyor.process import run

    args = VERSION_ARGS.get(tool, ("--version",))
    asked = " ".join((tool, *args))
    try:
        if tool == "kubectl":  # in kubectl's own environment: an empty kubeconfig
            completed = kubectl_version(path)
        else:
            completed = run([path, *args], timeout=20, check=False)
    except ConveyorError as exc:
        return False, f"present, but '{asked}' failed: {exc.message}"
    text = (completed.stdout or completed.stderr).strip().splitlines()
    if not completed.ok:
        last = text[-1] if text else f"exit code {completed.exit_code}"
        return False, f"present, but '{asked}' failed: {last}"
    return True, text[0] if text else "present"


def tool_checks() -> list[Check]:
    checks = []
    for tool, purpose, required in TOOLS:
        path = shutil.which(tool)
        if path is None:
            checks.append(Check(tool, False, f"not found ({purpose})", required, present=False))
            continue
        ok, version = _version(tool, path)
        checks.append(Check(tool, ok, f"{version} ({purpose})", required))
    return checks


def registry_check(host: str, insecure: bool) -> Check:
    import httpx

    from conveyor.registry.client import plain_http

    scheme = "http" if plain_http(host, insecure) else "https"
    url = f"{scheme}://{host}/v2/"
    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError as exc:
        return Check(f"registry {host}", False, f"{url}: {type(exc).__name__}: {exc}")
    ok = response.status_code in (200, 401)
    return Check(f"registry {host}", ok, f"{url} answered {response.status_code}")


def git_remote_check(repo: str, branch: str, token_env: str | None = None) -> Check:
    """Whether ``branch`` exists in ``repo``, asked with the credentials the run would use."""
    from conveyor.errors import ConveyorError
    from conveyor.gitops.git import Git, GitAuth

    try:
        git = Git(repo, auth=GitAuth.from_env(token_env), timeout=30)
        # "--": a repository or branch starting with "-" is never read as an option
        listed = git.run(["ls-remote", "--heads", "--", repo, f"refs/heads/{branch}"]).stdout
    except ConveyorError as exc:
        from conveyor.secrets import Redactor

        return Check("manifest repo", False, f"{Redactor()(repo)}: {exc.message}")
    shown = git.shown_remote
    if not listed.strip():
        return Check("manifest repo", False, f"{shown}: branch {branch!r} does not exist")
    return Check("manifest repo", True, f"{shown} branch {branch} at {listed.split()[0][:12]}")


def doctor(config: ConfigOption = None) -> None:
    """Check tools, engines, configuration, registry and manifest repository."""
    from rich.console import Console
    from rich.table import Table

    from conveyor.cli.common import load
    from conveyor.engines.selection import select_engine
    from conveyor.errors import ConveyorError

    checks = tool_checks()
    cfg = None
    try:
        cfg = load(config)
        checks.append(Check("configuration", True, str(cfg.root)))
    except ConveyorError as exc:
        # every problem of the file, without the hint line
        checks.append(Check("configuration", False, exc.message))
    try:
        choice = select_engine("auto", os.environ)
        checks.append(Check("engine", True, f"{choice.name}: {choice.reason}"))
    except ConveyorError as exc:
        checks.append(Check("engine", False, str(exc).splitlines()[0]))
    if cfg is not None:
        checks.append(registry_check(cfg.registry.host, cfg.registry.insecure))
        if cfg.gitops is not None:
            repo = cfg.gitops.repo
            if "://" not in repo and not repo.startswith("git@"):
                repo = str(cfg.resolve(Path(repo)))
            checks.append(git_remote_check(repo, cfg.gitops.branch, cfg.gitops.token_env))
    table = Table(title="conveyor doctor", show_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in checks:
        status = "[green]ok[/]"
        if not check.ok and check.present:
            status = "[red]failed[/]"
        elif not check.ok:
            status = "[red]missing[/]" if check.required else "[yellow]absent[/]"
        table.add_row(check.name, status, check.detail)
    Console().print(table)
    failed = [c for c in checks if not c.ok and c.required]
    if failed:
        raise typer.Exit(1)
