"""``conveyor init``: write conveyor.toml and the CI caller file, then say what is left to do."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli.exit_codes import exit_code_for
from conveyor.errors import ConveyorError
from conveyor.scaffold import PlannedFile, RepositoryFacts, check_ci, inspect_repository, scaffold
from conveyor.scaffold.generator import UPSTREAM_GITHUB, forge_host


class CI(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"


def init(
    ci: Annotated[
        CI, typer.Option("--ci", help="CI to generate the caller for: github or gitlab.")
    ] = CI.GITHUB,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    directory: Annotated[
        Path,
        typer.Option(
            "--directory",
            "-C",
            metavar="DIR",
            help="The application's directory (in a git repository).",
        ),
    ] = Path("."),
) -> None:
    """Generate conveyor.toml and the CI file that runs the pipeline.

    Detects the Dockerfile, the test command, the default branch and the
    application name; writes nothing if any of the files exists (unless
    --force).
    """
    try:
        check_ci(ci.value)
        facts = inspect_repository(directory)
        written = scaffold(facts.directory, ci.value, force, facts=facts)
    except ConveyorError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(exit_code_for(error)) from error
    typer.echo(report(facts, ci.value, written))


def report(facts: RepositoryFacts, ci: str, written: list[PlannedFile]) -> str:
    """What ``conveyor init`` prints: the files written, what to fill in, the next steps."""
    lines = [f"{planned.action} {planned.relative}" for planned in written]
    todos = [f"  {planned.relative}: {todo}" for planned in written for todo in planned.todos]
    if todos:
        lines += ["", "TODO:", *todos]
    lines += ["", "next steps:"]
    steps = _github_steps(facts) if ci == "github" else _gitlab_steps(facts)
    lines += [f"  {number}. {step}" for number, step in enumerate(steps, start=1)]
    return "\n".join(lines)


def _project(facts: RepositoryFacts) -> str:
    return facts.remote.path if facts.remote is not None else "OWNER/REPO"


def _github_steps(facts: RepositoryFacts) -> list[str]:
    project = _project(facts)
    branch = facts.default_branch
    return [
        "In Azure, give an Entra app registration (or a user-assigned managed identity) the "
        "AcrPush role on the registry and add federated credentials (issuer "
        "https://token.actions.githubusercontent.com, audience api://AzureADTokenExchange) "
        "for these subjects:\n"
        f"       repo:{project}:ref:refs/heads/{branch}   (the pipeline on pushes to {branch})\n"
        f"       repo:{project}:pull_request   (pull requests log in too, to pull and build; "
        "they publish nothing)\n"
        "     The promotion job logs in to no registry: it needs no federated credential.",
        "Add the repository secrets AZURE_CLIENT_ID, AZURE_TENANT_ID and "
        "AZURE_SUBSCRIPTION_ID (ids, no client secret: login is by OIDC).",
        "Add the secret GITOPS_TOKEN: a token that can push to the manifest repository and "
        "open pull requests there.",
        "Create the environment 'production' (Settings > Environments) with required reviewers.",
        f"Commit the files and push to {branch}.",
    ]


def _gitlab_steps(facts: RepositoryFacts) -> list[str]:
    project = _project(facts)
    branch = facts.default_branch
    host = forge_host(facts, "gitlab")
    issuer = f"https://{host}"
    return [
        f"Make Conveyor's CI/CD component available on {host}: mirror "
        f"https://github.com/{UPSTREAM_GITHUB} as the project {UPSTREAM_GITHUB} there (public, "
        "or allow this project in its CI/CD job token settings); .gitlab-ci.yml includes it.",
        "In Azure, give an Entra app registration (or a user-assigned managed identity) the "
        f"AcrPush role on the registry and add a federated credential (issuer {issuer}, "
        "audience api://AzureADTokenExchange) for this subject:\n"
        f"       project_path:{project}:ref_type:branch:ref:{branch}\n"
        "     Validation pipelines (merge requests, other branches) log in too, each with its "
        "own branch in the subject: add the branches you validate, or their login fails. "
        "The promotion job logs in to no registry: it needs no federated credential.",
        "Add the CI/CD variables AZURE_CLIENT_ID and AZURE_TENANT_ID, and "
        "CONVEYOR_GITOPS_TOKEN (masked, protected): a token that can push to the manifest "
        "repository and open merge requests there.",
        "Protect the environment 'production' (Settings > CI/CD > Protected environments) "
        "and the branch " + branch + ".",
        f"Commit the files and push to {branch}.",
    ]
