"""``conveyor init`` as a user sees it: exact output and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from conveyor.cli.app import app

from .conftest import GitRepo, git

APP = {"Dockerfile": "FROM scratch\n", "tests/test_app.py": ""}
runner = CliRunner()

GITHUB_OUTPUT = """\
wrote conveyor.toml
wrote .github/workflows/conveyor.yml
added .conveyor/ to .gitignore
added .conveyor/ to .dockerignore

TODO:
  conveyor.toml: set registry.host (now the placeholder myregistry.azurecr.io) to your registry
  conveyor.toml: set gitops.repo and gitops.forge.project to the manifest repository
  .github/workflows/conveyor.yml: set the ACR name (now the placeholder myregistry) to your \
registry's name
  .github/workflows/conveyor.yml: this CLI is not a release build, so \
conveyor-ci/conveyor/.github/workflows/conveyor.yml is pinned by its tag v0.1.0: replace it with \
the tag's commit SHA (git ls-remote https://github.com/conveyor-ci/conveyor refs/tags/v0.1.0)

next steps:
  1. In Azure, give an Entra app registration (or a user-assigned managed identity) the AcrPush \
role on the registry and add federated credentials (issuer \
https://token.actions.githubusercontent.com, audience api://AzureADTokenExchange) for these \
subjects:
       repo:acme/hello:ref:refs/heads/main   (the pipeline on pushes to main)
       repo:acme/hello:pull_request   (pull requests log in too, to pull and build; they \
publish nothing)
     The promotion job logs in to no registry: it needs no federated credential.
  2. Add the repository secrets AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_SUBSCRIPTION_ID \
(ids, no client secret: login is by OIDC).
  3. Add the secret GITOPS_TOKEN: a token that can push to the manifest repository and open \
pull requests there.
  4. Create the environment 'production' (Settings > Environments) with required reviewers.
  5. Commit the files and push to main.
"""


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_init_for_github_prints_files_todos_and_next_steps(git_repo: GitRepo) -> None:
    repo = git_repo(APP, origin="git@github.com:acme/hello.git")
    result = runner.invoke(app, ["init", "--directory", str(repo)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GITHUB_OUTPUT
    assert result.stderr == ""
    assert (repo / "conveyor.toml").is_file()
    assert (repo / ".github" / "workflows" / "conveyor.yml").is_file()


def test_init_for_gitlab_names_the_gitlab_subject(git_repo: GitRepo) -> None:
    repo = git_repo(APP, branch="trunk", origin="https://gitlab.example.com/acme/team/hello.git")
    result = runner.invoke(app, ["init", "--ci", "gitlab", "-C", str(repo)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["wrote conveyor.toml", "wrote .gitlab-ci.yml"]
    assert "       project_path:acme/team/hello:ref_type:branch:ref:trunk" in lines
    assert (
        "(issuer https://gitlab.example.com, audience api://AzureADTokenExchange)" in result.stdout
    )
    assert "CONVEYOR_GITOPS_TOKEN (masked, protected)" in result.stdout
    # the manual promotion job has no id_tokens: no credential is asked for it
    assert "The promotion job logs in to no registry: it needs no federated credential." in (
        result.stdout
    )
    assert "environment:production" not in result.stdout
    assert lines[-1] == "  5. Commit the files and push to trunk."
    assert (
        "  1. Make Conveyor's CI/CD component available on gitlab.example.com: mirror "
        "https://github.com/conveyor-ci/conveyor as the project conveyor-ci/conveyor there"
    ) in result.stdout


def test_without_origin_the_subjects_show_placeholders(git_repo: GitRepo) -> None:
    repo = git_repo(APP)
    result = runner.invoke(app, ["init", "-C", str(repo)])
    assert result.exit_code == 0, result.stderr
    assert "       repo:OWNER/REPO:ref:refs/heads/main   (the pipeline on pushes to main)" in (
        result.stdout.splitlines()
    )


def test_no_dockerfile_exits_3_and_writes_nothing(git_repo: GitRepo) -> None:
    repo = git_repo({"tests/test_app.py": ""})
    before = snapshot(repo)
    result = runner.invoke(app, ["init", "-C", str(repo)])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {repo}: no Dockerfile (or Containerfile) found; Conveyor builds the image from "
        "it\n  hint: add a Dockerfile to this directory, then run 'conveyor init' again\n"
    )
    assert snapshot(repo) == before


def test_not_a_git_repository_exits_3(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    result = runner.invoke(app, ["init", "-C", str(tmp_path / "app")])
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {(tmp_path / 'app').resolve()}: is not inside a git repository; Conveyor tags "
        "images with the commit SHA\n"
        "  hint: run 'git init' and commit, or pass --directory the repository\n"
    )
    assert sorted(p.name for p in (tmp_path / "app").iterdir()) == ["Dockerfile"]


def test_unknown_ci_is_a_usage_error(git_repo: GitRepo) -> None:
    repo = git_repo(APP)
    before = snapshot(repo)
    result = runner.invoke(
        app, ["init", "--ci", "jenkins", "-C", str(repo)], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2
    assert "'jenkins' is not one of 'github', 'gitlab'" in result.stderr  # exact: console script
    assert snapshot(repo) == before


def test_existing_files_are_kept_byte_for_byte(git_repo: GitRepo) -> None:
    repo = git_repo({**APP, "conveyor.toml": "# mine\n[app]\nname = 'x'\n"})
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "conveyor.yml").write_bytes(b"name: mine\n\xe2\x9c\x93\n")
    before = snapshot(repo)
    result = runner.invoke(app, ["init", "-C", str(repo)])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {repo}: these files exist already: conveyor.toml, "
        ".github/workflows/conveyor.yml; nothing was written\n"
        "  hint: pass --force to overwrite them, or move them away first\n"
    )
    assert snapshot(repo) == before
    assert git(repo, "status", "--porcelain") == "?? .github/"


def test_force_overwrites(git_repo: GitRepo) -> None:
    repo = git_repo({**APP, "conveyor.toml": "# mine\n"})
    result = runner.invoke(app, ["init", "--force", "-C", str(repo)])
    assert result.exit_code == 0, result.stderr
    assert "# mine" not in (repo / "conveyor.toml").read_text("utf-8")


def test_the_console_script_maps_the_error_to_its_exit_code(git_repo: GitRepo) -> None:
    repo = git_repo(APP)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("conveyor")), "init", "--ci", "circleci"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "error: conveyor init: Invalid value for '--ci': 'circleci' is not one of 'github', "
        "'gitlab' (see 'conveyor init --help')\n"
    )
    assert done.stdout == ""
