"""``conveyor doctor``: what this machine has, and whether the configured services answer."""

from __future__ import annotations

import os
import shutil
import subprocess
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


TOOLS = (
    ("podman", "podman engine: run, build, service", False),
    ("skopeo", "podman engine: registry inspection", False),
    ("buildah", "podman engine: builds (podman build uses it)", False),
    ("dagger", "dagger engine: the CLI", False),
    ("git", "manifest repository updates", True),
    ("kubectl", "policy check: kustomize rendering", False),
    ("trivy", "scan stage (runs inside Dagger when that engine is used)", False),
)


def _version(tool: str) -> str:
    try:
        completed = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"present, but '{tool} --version' failed: {exc}"
    text = (completed.stdout or completed.stderr).strip().splitlines()
    return text[0] if text else "present"


def tool_checks() -> list[Check]:
    checks = []
    for tool, purpose, required in TOOLS:
        path = shutil.which(tool)
        detail = f"{_version(tool)} ({purpose})" if path else f"not found ({purpose})"
        checks.append(Check(tool, path is not None, detail, required))
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


def git_remote_check(repo: str, branch: str) -> Check:
    from conveyor.secrets import Redactor

    try:
        completed = subprocess.run(
            ["git", "ls-remote", "--heads", repo, branch],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": _path()},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("manifest repo", False, f"{Redactor()(repo)}: {exc}")
    shown = Redactor()(repo)
    if completed.returncode != 0:
        tail = Redactor()(
            completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else ""
        )
        return Check("manifest repo", False, f"{shown}: git ls-remote failed: {tail}")
    if not completed.stdout.strip():
        return Check("manifest repo", False, f"{shown}: branch {branch!r} does not exist")
    return Check(
        "manifest repo", True, f"{shown} branch {branch} at {completed.stdout.split()[0][:12]}"
    )


def _path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


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
            checks.append(git_remote_check(repo, cfg.gitops.branch))
    table = Table(title="conveyor doctor", show_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in checks:
        status = (
            "[green]ok[/]"
            if check.ok
            else ("[red]missing[/]" if check.required else "[yellow]absent[/]")
        )
        table.add_row(check.name, status, check.detail)
    Console().print(table)
    failed = [c for c in checks if not c.ok and c.required]
    if failed:
        raise typer.Exit(1)
