"""``conveyor policy check DIR``: render every kustomization below DIR, check every image.

Every directory holding a kustomization is reported on its own: the images
it renders and the rules they break, or why it was not rendered (kustomize's
error, cleaned; helmCharts without ``--enable-helm``; a remote base offline).
A ``kind: Component`` is checked through the kustomizations that include it.
Images are found wherever a pod spec sits and in HelmRelease/HelmChart values
(see :mod:`conveyor.policy.workloads`); what could not be inspected is listed.

Only ``[policy]`` of the configuration is read.  Exit code: the policy code
(4) when an image breaks a rule, else the GitOps code (8) when a directory
could not be rendered, else 0.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from conveyor.cli.promote import fail
from conveyor.cli.run import ConfigOption
from conveyor.errors import ConveyorError

app = typer.Typer(help="Check manifests against the image policy.", no_args_is_help=True)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


@app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="A manifest tree (every kustomization in it).")],
    output: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.TABLE,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="GLOB",
            help="Skip directories whose path below DIR matches (repeatable), e.g. 'clusters/*'.",
        ),
    ] = None,
    enable_helm: Annotated[
        bool,
        typer.Option(
            "--enable-helm",
            help="Render helmCharts (kustomize --enable-helm; helm must be on PATH).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Render every kustomization under DIR with kustomize and check every image."""
    from conveyor.cli.exit_codes import ExitCode

    try:
        report = _check(directory, config, exclude or [], enable_helm=enable_helm)
    except ConveyorError as error:
        fail(error)
    if output is Format.JSON:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_table(report)
    if report["violations"]:
        raise typer.Exit(int(ExitCode.POLICY))
    if report["failed"]:
        raise typer.Exit(int(ExitCode.GITOPS))


def _kustomization_dirs(root: Path) -> list[Path]:
    from conveyor.errors import ManifestError
    from conveyor.gitops.kustomization import KUSTOMIZATION_NAMES

    if not root.is_dir():
        raise ManifestError(root, "is not a directory", hint="pass the manifest tree's root")
    found = sorted(
        {
            path.parent
            for name in KUSTOMIZATION_NAMES
            for path in root.rglob(name)
            if ".git" not in path.relative_to(root).parts and path.is_file()
        }
    )
    if not found:
        raise ManifestError(
            root,
            "has no kustomization.yaml in it or below it",
            hint="point DIR at a kustomize tree",
        )
    return found


def _load_policy(config_path: Path | None) -> Any:
    from conveyor.config import find_config, load_policy

    return load_policy(config_path if config_path is not None else find_config(Path.cwd()))


def _excluded(relative: str, patterns: list[str]) -> str | None:
    for pattern in patterns:
        stripped = pattern.rstrip("/")
        if fnmatch.fnmatchcase(relative, stripped) or any(
            fnmatch.fnmatchcase(parent, stripped) for parent in _parents(relative)
        ):
            return pattern
    return None


def _parents(relative: str) -> list[str]:
    parts = relative.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _check_one(
    path: Path, source: str, policy: Any, enable_helm: bool, tree: Path
) -> dict[str, Any]:
    from conveyor.errors import ManifestError, RenderUnavailableError
    from conveyor.gitops.components import component_users, is_component
    from conveyor.gitops.kustomization import kustomization_file
    from conveyor.gitops.renderer import render
    from conveyor.policy.rules import check_reference
    from conveyor.policy.workloads import inspect

    entry: dict[str, Any] = {"directory": source, "status": "checked", "reason": ""}
    entry.update(images=[], violations=[], uninspected=[])
    try:
        file = kustomization_file(path, shown=source)
        if is_component(file.read_bytes().decode("utf-8", "replace"), str(file)):
            users = [u.relative_to(tree).as_posix() or "." for u in component_users(path, tree)]
            reason = (
                f"a Component: checked where it is included ({', '.join(users)})"
                if users
                else f"a Component that no kustomization under {tree.name or tree} includes: "
                "nothing renders it, not checked"
            )
            entry.update(status="component", reason=reason)
            return entry
        found = inspect(render(path, enable_helm=enable_helm), source=source)
    except RenderUnavailableError as error:
        entry.update(status="failed", reason=f"not rendered: {error.problem}", hint=error.hint)
        return entry
    except ManifestError as error:
        entry.update(status="failed", reason=f"not rendered: {error.problem}", hint=error.hint)
        return entry
    entry["uninspected"] = found.uninspected
    for image in found.images:
        entry["images"].append({"image": image.image, "where": image.where})
        for violation in check_reference(image.image, policy, where=f"{source}: {image.where}"):
            entry["violations"].append(
                {
                    "where": violation.where,
                    "image": violation.image,
                    "rule": str(violation.rule),
                    "message": violation.message,
                    "hint": violation.hint,
                }
            )
    return entry


def _check(
    directory: Path, config_path: Path | None, exclude: list[str], *, enable_helm: bool = False
) -> dict[str, Any]:
    policy = _load_policy(config_path)
    directories: list[dict[str, Any]] = []
    for path in _kustomization_dirs(directory):
        source = path.relative_to(directory).as_posix() or "."
        pattern = _excluded(source, exclude)
        if pattern is not None:
            directories.append(
                {
                    "directory": source,
                    "status": "excluded",
                    "reason": f"--exclude {pattern}",
                    "images": [],
                    "violations": [],
                    "uninspected": [],
                }
            )
            continue
        directories.append(_check_one(path, source, policy, enable_helm, directory))
    checked = [d for d in directories if d["status"] == "checked"]
    return {
        "kustomizations": [d["directory"] for d in checked],
        "images": sum(len(d["images"]) for d in checked),
        "violations": [v for d in checked for v in d["violations"]],
        "failed": [
            {"directory": d["directory"], "reason": d["reason"], "hint": d.get("hint")}
            for d in directories
            if d["status"] == "failed"
        ],
        "uninspected": [f"{d['directory']}: {u}" for d in checked for u in d["uninspected"]],
        "directories": directories,
    }


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    # a terminal wraps to its width; a log or pipe gets whole lines that grep can find
    console = Console(width=None if sys.stdout.isatty() else 240)
    for item in report["directories"]:
        if item["status"] == "checked":
            note = f"{len(item['images'])} image(s), {len(item['violations'])} violation(s)"
        else:
            note = item["reason"]
        typer.echo(f"{item['status']:<9} {item['directory']}: {note}")
    violations = report["violations"]
    if violations:
        table = Table("where", "image", "rule", "why")
        for item in violations:
            table.add_row(item["where"], item["image"], item["rule"], item["message"])
        console.print(table)
    for item in report["failed"]:
        if item.get("hint"):
            typer.echo(f"{item['directory']}: hint: {item['hint']}")
    if report["uninspected"]:
        typer.echo("not inspected:")
        for line in report["uninspected"]:
            typer.echo(f"  {line}")
    summary = f"{report['images']} image(s) in {len(report['kustomizations'])} kustomization(s): "
    summary += f"{len(violations)} violation(s)" if violations else "no violations"
    failed = len(report["failed"])
    if failed:
        summary += f"; {failed} director{'y' if failed == 1 else 'ies'} not rendered"
    typer.echo(summary)
