"""Planning and writing the files: all or nothing, values that cannot break the syntax."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from conveyor.config import load_config
from conveyor.errors import ScaffoldError
from conveyor.scaffold import inspect_repository, plan, scaffold

from .conftest import GitRepo, git

APP = {"Dockerfile": "FROM scratch\n", "tests/test_app.py": ""}


def yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_unknown_ci_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError) as caught:
        scaffold(tmp_path, "jenkins")  # not a git repository either
    assert str(caught.value) == "--ci: unknown CI 'jenkins'\n  hint: choose one of: github, gitlab"


def test_files_are_planned_relative_to_the_repository_root(git_repo: GitRepo) -> None:
    repo = git_repo({"services/api/Dockerfile": "FROM scratch\n"})
    facts = inspect_repository(repo / "services" / "api")
    github = plan(facts, "github")
    assert [(f.path, f.relative) for f in github] == [
        (repo / "services/api/conveyor.toml", "services/api/conveyor.toml"),
        (repo / ".github/workflows/conveyor.yml", ".github/workflows/conveyor.yml"),
    ]
    assert yaml(github[1].content)["jobs"]["conveyor"]["with"]["config"] == (
        "services/api/conveyor.toml"
    )
    gitlab = plan(facts, "gitlab")
    assert gitlab[1].relative == ".gitlab-ci.yml"
    (include,) = yaml(gitlab[1].content)["include"]
    assert include["inputs"]["config"] == "services/api/conveyor.toml"


def test_scaffold_writes_a_config_that_loads(git_repo: GitRepo) -> None:
    repo = git_repo(APP, name="Hello_Service", origin="git@github.com:acme/hello.git")
    written = scaffold(repo, "github")
    assert [f.relative for f in written] == [
        "conveyor.toml",
        ".github/workflows/conveyor.yml",
        ".gitignore",
        ".dockerignore",
    ]
    for planned in written:
        assert planned.path.read_text("utf-8") == planned.content
    config = load_config(repo / "conveyor.toml", env={})
    assert config.app.name == "hello_service"
    assert config.registry.image == "myregistry.azurecr.io/hello_service"
    assert config.stages.test is not None
    assert config.stages.test.command[-1].endswith("python -m pytest -q --junitxml=junit.xml")
    assert config.gitops is not None
    assert config.gitops.repo == "https://github.com/acme/manifests.git"
    assert config.gitops.environments["production"].promotion == "pull-request"
    assert config.gitops.forge is not None
    assert config.gitops.forge.project == "acme/manifests"
    assert config.gitops.forge.api_url is None
    assert config.policy.allowed_registries == [r"^myregistry\.azurecr\.io/.+$"]
    assert written[0].todos == (
        "set registry.host (now the placeholder myregistry.azurecr.io) to your registry",
        "set gitops.repo and gitops.forge.project to the manifest repository",
    )


def test_placeholder_test_command_is_a_todo_in_the_file(git_repo: GitRepo) -> None:
    repo = git_repo({"Dockerfile": "FROM scratch\n"})
    config_file = scaffold(repo, "github")[0]
    assert config_file.todos[0].startswith("no test suite was recognised")
    assert f"# TODO: {config_file.todos[0]}\n" in config_file.content
    assert load_config(repo / "conveyor.toml", env={}).stages.test is not None


def test_self_hosted_gitlab_gets_its_api_url(git_repo: GitRepo) -> None:
    repo = git_repo(APP, origin="git@gitlab.example.com:platform/team/hello.git")
    scaffold(repo, "gitlab")
    forge = load_config(repo / "conveyor.toml", env={}).gitops.forge  # type: ignore[union-attr]
    assert forge is not None
    assert (forge.kind, forge.project, forge.api_url) == (
        "gitlab",
        "platform/team/manifests",
        "https://gitlab.example.com/api/v4",
    )


def test_origin_on_the_other_forge_keeps_the_public_host(git_repo: GitRepo) -> None:
    repo = git_repo(APP, origin="https://github.com/acme/hello.git")
    scaffold(repo, "gitlab")
    config = load_config(repo / "conveyor.toml", env={})
    assert config.gitops is not None
    assert config.gitops.repo == "https://gitlab.com/acme/manifests.git"
    assert config.gitops.forge is not None
    assert config.gitops.forge.api_url is None


def test_odd_branch_names_cannot_break_the_yaml(git_repo: GitRepo) -> None:
    branch = 'rel/it\'s-#1-"x"'
    repo = git_repo(APP, branch=branch)
    workflow = scaffold(repo, "github")[1]
    assert yaml(workflow.content)["on"]["push"]["branches"] == [branch]


def test_existing_files_are_listed_and_nothing_is_written(git_repo: GitRepo) -> None:
    repo = git_repo(APP)
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "conveyor.yml").write_bytes(b"name: mine\r\n")
    before = snapshot(repo)
    with pytest.raises(ScaffoldError) as caught:
        scaffold(repo, "github")
    assert str(caught.value) == (
        f"{repo}: these files exist already: .github/workflows/conveyor.yml; nothing was written\n"
        "  hint: pass --force to overwrite them, or move them away first"
    )
    assert snapshot(repo) == before
    assert not (repo / "conveyor.toml").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == (
        "?? .github/workflows/conveyor.yml"
    )


def test_force_overwrites_every_file(git_repo: GitRepo) -> None:
    repo = git_repo({**APP, "conveyor.toml": "old\n", ".gitlab-ci.yml": "old: {}\n"})
    written = scaffold(repo, "gitlab", force=True)
    assert (repo / "conveyor.toml").read_text("utf-8") == written[0].content
    assert tomllib.loads(written[0].content)["app"]["name"] == "hello"
    assert (repo / ".gitlab-ci.yml").read_text("utf-8") == written[1].content
    assert not list(repo.rglob("*.conveyor-init.tmp"))


def test_a_directory_in_the_way_is_refused_even_with_force(git_repo: GitRepo) -> None:
    repo = git_repo(APP)
    (repo / "conveyor.toml").mkdir()
    (repo / "conveyor.toml" / "keep").write_text("x")
    with pytest.raises(ScaffoldError) as caught:
        scaffold(repo, "github", force=True)
    assert caught.value.problem == (
        "is a directory where conveyor init writes a file; nothing was written"
    )
    assert not (repo / ".github").exists()
