"""``conveyor policy check DIR``: render every kustomization below DIR, check every image.

Every container, init container and ephemeral container image of Deployments,
StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and Pods is checked
against the configuration's ``[policy]``; the report is a table or JSON, and
the exit code is the policy code (4) when anything is refused.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli.promote import ConfigOption, fail
from conveyor.errors import ConveyorError

app = typer.Typer(help="Check manifests against the image policy.", no_args_is_help=True)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


@app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="A manifest tree (every kustomization in it).")],
    output: Annotated[Format, typer.Option("--format", help="Report format.")] = Format.TABLE,
    config: ConfigOption = None,
) -> None:
    """Render every kustomization under DIR with kustomize and check every image."""
    from conveyor.cli.exit_codes import ExitCode

    try:
        report = _check(directory, config)
    except ConveyorError as error:
        fail(error)
    if output is Format.JSON:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_table(report)
    if report["violations"]:
        raise typer.Exit(int(ExitCode.POLICY))


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
            if ".git" not in path.relative_to(root).parts
        }
    )
    if not found:
        raise ManifestError(
            root,
            "has no kustomization.yaml in it or below it",
            hint="point DIR at a kustomize tree",
        )
    return found


def _check(directory: Path, config_path: Path | None) -> dict[str, object]:
    from conveyor.cli.common import load
    from conveyor.gitops.renderer import render
    from conveyor.policy.rules import check_reference
    from conveyor.policy.workloads import workload_images

    policy = load(config_path).policy
    directories = _kustomization_dirs(directory)
    images = 0
    violations: list[dict[str, str]] = []
    for path in directories:
        source = path.relative_to(directory).as_posix() or "."
        for found in workload_images(render(path), source=source):
            images += 1
            for violation in check_reference(found.image, policy, where=f"{source}: {found.where}"):
                violations.append(
                    {
                        "where": violation.where,
                        "image": violation.image,
                        "rule": str(violation.rule),
                        "message": violation.message,
                        "hint": violation.hint,
                    }
                )
    return {
        "kustomizations": [p.relative_to(directory).as_posix() or "." for p in directories],
        "images": images,
        "violations": violations,
    }


def _print_table(report: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    violations = report["violations"]
    kustomizations = report["kustomizations"]
    assert isinstance(violations, list)
    assert isinstance(kustomizations, list)
    import sys

    # a terminal wraps to its width; a log or pipe gets whole lines that grep can find
    console = Console(width=None if sys.stdout.isatty() else 240)
    if violations:
        table = Table("where", "image", "rule", "why")
        for item in violations:
            table.add_row(item["where"], item["image"], item["rule"], item["message"])
        console.print(table)
    summary = f"{report['images']} image(s) in {len(kustomizations)} kustomization(s): " + (
        f"{len(violations)} violation(s)" if violations else "no violations"
    )
    typer.echo(summary)
