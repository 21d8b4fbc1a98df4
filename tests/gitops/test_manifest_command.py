"""``conveyor manifest`` as a user sees it: exact output and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops_helpers import git, show
from typer.testing import CliRunner

from conveyor.cli.app import app

runner = CliRunner()
STAGING = "apps/hello/overlays/staging"
SHA = "0123abcd" * 5
DIGEST = "sha256:" + "7" * 64
OLD = "myacr.azurecr.io/hello:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567@sha256:" + "2" * 64


def test_set_image_edits_locally_and_reports(manifests: Path) -> None:
    overlay = manifests / STAGING
    spec = f"hello=myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    result = runner.invoke(app, ["manifest", "set-image", str(overlay), spec])
    assert result.exit_code == 0, result.output
    file = overlay / "kustomization.yaml"
    assert result.output == (
        f"{file}: image hello: {OLD} -> myacr.azurecr.io/hello:{SHA}@{DIGEST}\n"
    )
    assert f'newTag: "{SHA}"' in file.read_text()
    again = runner.invoke(app, ["manifest", "set-image", str(overlay), spec])
    assert again.exit_code == 0
    assert again.output == (
        f"{file}: image hello is already myacr.azurecr.io/hello:{SHA}@{DIGEST}; nothing changed\n"
    )


def test_set_image_of_an_unused_name_is_refused_and_file_restored(manifests: Path) -> None:
    overlay = manifests / "apps/hello/overlays/production"
    before = (overlay / "kustomization.yaml").read_bytes()
    result = runner.invoke(app, ["manifest", "set-image", str(overlay), "nginx:1.27"])
    assert result.exit_code == 8
    assert result.output == (
        f"error: {overlay}: no container in the rendered output uses image 'nginx'; "
        "file left unchanged\n"
        "  hint: NAME must be the image name the resources use (before any images: rewrite)\n"
    )
    assert (overlay / "kustomization.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (["apps/none", "a:v1"], 8, "apps/none: directory does not exist"),
        ([STAGING, "hello"], 4, "image 'hello' refused: not a valid image reference"),
    ],
)
def test_set_image_bad_input(
    manifests: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, output: str
) -> None:
    monkeypatch.chdir(manifests)
    result = runner.invoke(app, ["manifest", "set-image", *args])
    assert result.exit_code == code
    assert result.output.startswith(f"error: {output}")


def test_set_image_on_malformed_kustomization(manifests: Path) -> None:
    overlay = manifests / STAGING
    (overlay / "kustomization.yaml").write_text("images: [\n")
    result = runner.invoke(app, ["manifest", "set-image", str(overlay), "hello:v2"])
    assert result.exit_code == 8
    assert result.output.startswith(
        f"error: {overlay / 'kustomization.yaml'}: is not valid YAML at line 2"
    )


def write_config(tmp_path: Path, remote: Path, extra: str = "") -> Path:
    config = tmp_path / "conveyor.toml"
    config.write_text(
        f"""
[app]
name = "hello"

[registry]
host = "myacr.azurecr.io"
repository = "hello"

[gitops]
repo = "{remote}"
author_name = "Pipeline"
author_email = "pipeline@example.com"
{extra}

[gitops.environments.staging]
path = "{STAGING}"
image_name = "hello"

[gitops.environments.production]
path = "apps/hello/overlays/production"
promotion = "pull-request"

[policy]
allowed_registries = ['^myacr\\.azurecr\\.io/.+$']
"""
    )
    return config


def test_update_commits_like_the_manifest_stage(remote: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, remote)
    ref = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    result = runner.invoke(app, ["manifest", "update", "staging", ref, "--config", str(config)])
    assert result.exit_code == 0, result.output
    commit = git("rev-parse", "main", cwd=remote).strip()
    assert result.output == (
        f"staging: pushed {commit[:12]} to main ({OLD} -> {ref}, attempts: 1)\n"
    )
    assert git("log", "-1", "--format=%B%an", "main", cwd=remote) == (
        f"deploy(staging): hello {SHA[:12]}\n\nimage: {ref}\nsource: {SHA}\nPipeline\n"
    )
    assert f"digest: {DIGEST}" in show(remote, f"{STAGING}/kustomization.yaml")
    again = runner.invoke(app, ["manifest", "update", "staging", ref, "--config", str(config)])
    assert again.output == f"staging: already at {ref}; nothing to commit\n"
    assert again.exit_code == 0


@pytest.mark.parametrize(
    "case",
    [
        ("qa", f"myacr.azurecr.io/hello:v1@{DIGEST}", 3, "gitops.environments.qa: does not exist"),
        (
            "staging",
            "myacr.azurecr.io/hello:latest",
            4,
            "error: image 'myacr.azurecr.io/hello:latest' refused: mutable-tag",
        ),
        (
            "staging",
            f"docker.io/evil/hello:v1@{DIGEST}",
            4,
            "error: image 'docker.io/evil/hello:v1@",
        ),
        (
            "staging",
            "myacr.azurecr.io/hello:v1",
            4,
            "error: image 'myacr.azurecr.io/hello:v1' refused: digest-required",
        ),
    ],
)
def test_update_bad_input_changes_nothing(
    remote: Path, tmp_path: Path, case: tuple[str, str, int, str]
) -> None:
    env, ref, code, start = case
    config = write_config(tmp_path, remote)
    result = runner.invoke(app, ["manifest", "update", env, ref, "--config", str(config)])
    assert result.exit_code == code, result.output
    assert start in result.output
    assert git("log", "--format=%s", "main", cwd=remote) == "seed\n"


def test_update_with_protected_branch_reports_rejection(remote: Path, tmp_path: Path) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch: main' >&2\nexit 1\n")
    hook.chmod(0o755)
    config = write_config(tmp_path, remote)
    ref = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    result = runner.invoke(app, ["manifest", "update", "staging", ref, "--config", str(config)])
    assert result.exit_code == 8
    assert result.output == (
        f"error: push of 'main' to {remote} was rejected: pre-receive hook declined; "
        "protected branch: main\n"
        "  hint: the branch may be protected: promote through a pull request, "
        "or allow this identity to push\n"
    )
    assert git("log", "--format=%s", "main", cwd=remote) == "seed\n"


def test_update_with_unset_token_variable(remote: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, remote, extra='token_env = "CONVEYOR_TEST_UNSET_TOKEN"')
    ref = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    result = runner.invoke(app, ["manifest", "update", "staging", ref, "--config", str(config)])
    assert result.exit_code == 3
    assert result.output.startswith(
        "error: configuration: CONVEYOR_TEST_UNSET_TOKEN: secret environment variable is not set"
    )
