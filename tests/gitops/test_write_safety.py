"""Protected environments and paths: what no write may do, through the real CLI.

A real bare manifest repository (tests/resources/manifests), the host's real
kustomize; the GitHub API double where a pull request is opened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from forge.forge_doubles import TOKEN, GitHubApiDouble
from promotion_repo import SHA_B, STAGING, Remote, git, make_remote
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.cli.exit_codes import ExitCode
from conveyor.config import load_config

pytestmark = pytest.mark.timeout(120)

DIGEST_C = "sha256:" + "4" * 64
REF_C = f"myacr.azurecr.io/hello:{'c' * 40}@{DIGEST_C}"
STAGING_ONLY = '[gitops.environments.staging]\npath = "apps/hello/overlays/staging"\n'
HEAD = """
[app]
name = "hello"

[registry]
host = "myacr.azurecr.io"
repository = "hello"

[gitops]
repo = "{repo}"

[gitops.forge]
kind = "github"
project = "acme/manifests"
api_url = "{forge}"
token_env = "FORGE_TOKEN"
"""


@pytest.fixture
def remote(manifests: Path, tmp_path: Path) -> Remote:
    return make_remote(manifests, tmp_path)


@pytest.fixture
def github() -> Iterator[GitHubApiDouble]:
    with GitHubApiDouble("acme", "manifests", TOKEN) as double:
        yield double


def config_file(tmp_path: Path, environments: str, repo: Path, forge: str = "") -> Path:
    path = tmp_path / "app" / "conveyor.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(HEAD.format(repo=repo, forge=forge or "http://127.0.0.1:9") + environments)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"FORGE_TOKEN": TOKEN})
    return result.exit_code, result.stdout, result.stderr


def refs(remote: Remote) -> str:
    return git("--git-dir", str(remote.bare), "for-each-ref", "--format=%(refname) %(objectname)")


# -- protected environments ----------------------------------------------------


def test_production_defaults_to_pull_requests(tmp_path: Path, remote: Remote) -> None:
    config = load_config(
        config_file(
            tmp_path,
            '[gitops.environments.production]\npath = "p"\n\n'
            '[gitops.environments.live]\npath = "l"\nprotected = true\n\n'
            '[gitops.environments.prod-eu]\npath = "e"\n\n'
            '[gitops.environments.staging]\npath = "s"\n',
            remote.bare,
        ),
        env={},
    )
    assert config.gitops is not None
    promotions = {n: e.promotion.value for n, e in config.gitops.environments.items()}
    assert promotions == {
        "production": "pull-request",
        "live": "pull-request",
        "prod-eu": "commit",
        "staging": "commit",
    }
    assert {n for n, e in config.gitops.environments.items() if e.is_protected(n)} == {
        "production",
        "live",
    }


@pytest.mark.parametrize(
    ("table", "why"),
    [
        (
            '[gitops.environments.production]\npath = "p"\npromotion = "commit"\n',
            "named 'production'",
        ),
        ('[gitops.environments.Prod]\npath = "p"\npromotion = "commit"\n', "named 'Prod'"),
        (
            '[gitops.environments.live]\npath = "p"\npromotion = "commit"\nprotected = true\n',
            "protected = true",
        ),
    ],
)
def test_a_protected_environment_by_commit_is_a_configuration_error(
    tmp_path: Path, remote: Remote, table: str, why: str
) -> None:
    path = config_file(tmp_path, table + "\n[stages.manifest]\nenabled = false\n", remote.bare)
    name = table.split("]", maxsplit=1)[0].rsplit(".", 1)[1]

    code, out, err = invoke("rollback", name, "-c", str(path))

    assert code == ExitCode.CONFIG
    assert out == ""
    assert err == (
        f"error: {path}: gitops.environments: {name}.promotion is 'commit', but environment "
        f"{name!r} is protected ({why}) and changes only through a pull request: set "
        f'gitops.environments.{name}.promotion = "pull-request" (or protected = false if it '
        "is not production)\n"
    )


def test_unprotected_production_may_take_commits(tmp_path: Path, remote: Remote) -> None:
    path = config_file(
        tmp_path,
        '[gitops.environments.production]\npath = "apps/hello/overlays/production"\n'
        'promotion = "commit"\nprotected = false\n\n' + STAGING_ONLY,
        remote.bare,
    )
    code, out, err = invoke("manifest", "update", "production", REF_C, "-c", str(path))
    assert (code, err) == (0, "")
    assert out.startswith(f"production: pushed {remote.sha()[:12]} to main")


def test_manifest_update_never_commits_to_production(
    tmp_path: Path, remote: Remote, github: GitHubApiDouble
) -> None:
    path = config_file(
        tmp_path,
        '[gitops.environments.production]\npath = "apps/hello/overlays/production"\n\n'
        + STAGING_ONLY,
        remote.bare,
        github.url,
    )
    before = refs(remote)

    code, _, err = invoke("manifest", "update", "production", REF_C, "-c", str(path))

    assert code == ExitCode.CONFIG
    assert "changes only through an approved pull request" in err
    assert refs(remote) == before


def test_a_staging_setter_in_production_s_overlay_is_never_committed(
    tmp_path: Path, remote: Remote, github: GitHubApiDouble
) -> None:
    # staging's Flux setter file sits in production's overlay: a staging commit would change
    # what production renders
    values = "apps/hello/overlays/production/image.yaml"
    (remote.work / values).write_text(
        'image: myacr.azurecr.io/hello:1 # {"$imagepolicy": "flux-system:hello"}\n'
    )
    git("add", "-A", cwd=remote.work)
    git("commit", "-qm", "setter", cwd=remote.work)
    git("push", "-q", "origin", "HEAD:main", cwd=remote.work)
    path = config_file(
        tmp_path,
        '[gitops.environments.staging]\npath = "apps/hello/overlays/staging"\n'
        f'flux_setters = [{{ file = "{values}", policy = "flux-system:hello" }}]\n\n'
        '[gitops.environments.production]\npath = "apps/hello/overlays/production"\n',
        remote.bare,
        github.url,
    )
    before = refs(remote)

    code, _, err = invoke("manifest", "update", "staging", REF_C, "-c", str(path))

    assert code == ExitCode.CONFIG
    assert err == (
        "error: configuration: gitops.environments.staging: changes files that protected "
        "environment 'production' renders; a protected environment's files change only through "
        "a pull request, never by a commit on 'main'\n"
        "  hint: keep staging's files (path, flux_setters, helm_values) out of production's "
        "overlay and bases\n"
    )
    assert refs(remote) == before


# -- paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "table"),
    [
        ("gitops.environments.staging.path", 'path = "../outside"'),
        ("gitops.environments.staging.path", 'path = "/etc/kubernetes"'),
        ("gitops.environments.staging.path", 'path = "apps/../../x"'),
        (
            "gitops.environments.staging.flux_setters[0].file",
            'path = "a"\nflux_setters = [{ file = "../x.yaml", policy = "ns:p" }]',
        ),
        (
            "gitops.environments.staging.helm_values[0].file",
            'path = "a"\nhelm_values = [{ file = "/abs/values.yaml" }]',
        ),
    ],
)
def test_a_path_outside_the_repository_is_refused_at_load_also_by_plan(
    tmp_path: Path, remote: Remote, field: str, table: str
) -> None:
    path = config_file(tmp_path, f"[gitops.environments.staging]\n{table}\n", remote.bare)

    # the console script, as a user runs it (plan's errors reach its entry point)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("conveyor")), "plan", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    code, out, err = done.returncode, done.stdout, done.stderr

    assert code == ExitCode.CONFIG
    assert out == ""
    assert err.startswith(
        f"error: {path}: {field}: must be a path inside the manifest repository, relative to "
        "its root (no leading '/', no '..') (got "
    )
    assert err.count("\n") == 1


@pytest.fixture
def linked(remote: Remote, tmp_path: Path) -> tuple[Remote, Path]:
    """staging's kustomization.yaml committed as a link to a file outside the repository."""
    outside = tmp_path / "outside" / "kustomization.yaml"
    outside.parent.mkdir()
    shutil.copy(remote.work / STAGING, outside)
    (remote.work / STAGING).unlink()
    os.symlink(outside, remote.work / STAGING)
    git("add", "-A", cwd=remote.work)
    git("commit", "-qm", "a link out", cwd=remote.work)
    git("push", "-q", "origin", "HEAD:main", cwd=remote.work)
    return remote, outside


def test_update_never_writes_through_a_link_out_of_the_clone(
    tmp_path: Path, linked: tuple[Remote, Path]
) -> None:
    remote, outside = linked
    text = outside.read_bytes()
    before = refs(remote)

    code, _, err = invoke(
        "manifest",
        "update",
        "staging",
        REF_C,
        "-c",
        str(config_file(tmp_path, STAGING_ONLY, remote.bare)),
    )

    assert code == ExitCode.GITOPS
    assert err == (
        f"error: {STAGING}: is, or lies under, a symbolic link that leads outside the repository "
        f"({STAGING} -> {outside}); refused: nothing was read or written there\n"
        "  hint: commit the file itself in the manifest repository, not a link to it\n"
    )
    assert outside.read_bytes() == text
    assert refs(remote) == before


def test_rollback_reads_no_link(tmp_path: Path, linked: tuple[Remote, Path]) -> None:
    remote, outside = linked
    text = outside.read_bytes()

    code, _, err = invoke(
        "rollback", "staging", "-c", str(config_file(tmp_path, STAGING_ONLY, remote.bare))
    )

    assert code == ExitCode.GITOPS
    assert err == (
        f"error: {STAGING}: is a symbolic link (to {outside}) in the manifest repository; "
        "Conveyor reads and writes only regular files inside the repository\n"
        "  hint: commit the kustomization itself, not a link to it\n"
    )
    assert outside.read_bytes() == text


def test_a_link_inside_the_clone_is_not_written_through(tmp_path: Path, remote: Remote) -> None:
    # staging's kustomization links to production's: an edit through it would change production
    (remote.work / STAGING).unlink()
    os.symlink("../production/kustomization.yaml", remote.work / STAGING)
    git("add", "-A", cwd=remote.work)
    git("commit", "-qm", "a link in", cwd=remote.work)
    git("push", "-q", "origin", "HEAD:main", cwd=remote.work)
    before = refs(remote)

    code, _, err = invoke(
        "manifest",
        "update",
        "staging",
        REF_C,
        "-c",
        str(config_file(tmp_path, STAGING_ONLY, remote.bare)),
    )

    assert code == ExitCode.GITOPS
    assert err.startswith(
        f"error: {STAGING}: is a symbolic link (to ../production/kustomization.yaml); Conveyor "
        "edits only regular files"
    )
    assert refs(remote) == before
    assert SHA_B not in err


def test_set_image_never_writes_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside" / "kustomization.yaml"
    outside.parent.mkdir()
    outside.write_text("images:\n- name: hello\n  newTag: '1'\n")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    os.symlink(outside, overlay / "kustomization.yaml")

    code, out, err = invoke("manifest", "set-image", str(overlay), "hello:2")

    assert code == ExitCode.GITOPS
    assert out == ""
    assert err == (
        f"error: {overlay}/kustomization.yaml: is a symbolic link (to {outside}); Conveyor "
        "edits only regular files\n"
        "  hint: edit the link's target directory, or commit the file itself\n"
    )
    assert outside.read_text() == "images:\n- name: hello\n  newTag: '1'\n"
