"""``conveyor manifest`` as a user sees it: exact output and exit codes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from gitops_helpers import git, make_remote, show
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
        f"  verified with kustomize: {overlay}\n"
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
        "  hint: NAME must be an image name the containers use here (after the bases' own "
        "images: rewrites): hello, myacr.azurecr.io/envoy\n"
    )
    assert (overlay / "kustomization.yaml").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (["apps/none", "a:v1"], 2, "Invalid value for 'DIR': 'apps/none' is not a directory"),
        (
            [STAGING, "hello"],
            2,
            "Invalid value for 'NAME=REF[@DIGEST]': 'hello': not a valid image reference: "
            "'hello' sets nothing: add :TAG, @DIGEST or =NEWNAME",
        ),
    ],
)
def test_set_image_bad_input(
    manifests: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, output: str
) -> None:
    """Argument errors are usage errors (the console script's one line: test_bad_input)."""
    monkeypatch.chdir(manifests)
    result = runner.invoke(app, ["manifest", "set-image", *args], env={"COLUMNS": "400"})
    assert result.exit_code == code
    assert output in result.output


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


# --- set-image: what kustomize can and cannot verify ------------------------------

CACHE_BIN = Path("/var/cache/conveyor/bin")
CORPUS = Path(__file__).resolve().parents[1] / "resources" / "editor-corpus"


def corpus_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(CORPUS / name, target)
    return target


def test_set_image_in_a_component_is_verified_through_the_overlays_using_it(
    tmp_path: Path,
) -> None:
    layout = corpus_copy(tmp_path, "image-in-component")
    component = layout / "components/pin"
    result = runner.invoke(app, ["manifest", "set-image", str(component), "redis:7.4.1"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{component / 'kustomization.yaml'}: image redis: (not set) -> redis:7.4.1\n"
        f"  verified with kustomize: {layout / 'overlays/qa'}, {layout / 'overlays/staging'}\n"
    )


def test_set_image_in_a_component_nobody_uses_warns_what_was_not_verified(
    tmp_path: Path,
) -> None:
    layout = corpus_copy(tmp_path, "image-in-component")
    shutil.rmtree(layout / "overlays")
    component = layout / "components/pin"
    result = runner.invoke(app, ["manifest", "set-image", str(component), "hello:v9"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        f"  warning: not verified: {component} is a Component and no kustomization "
        f"under {layout} includes it"
    )
    assert "newTag: v9" in (component / "kustomization.yaml").read_text()


def test_an_edit_that_leaves_the_render_unchanged_is_accepted(tmp_path: Path) -> None:
    layout = corpus_copy(tmp_path, "redundant-newname")
    overlay = layout / "overlay"
    result = runner.invoke(app, ["manifest", "set-image", str(overlay), "hello:v1"])
    assert result.exit_code == 0, result.output
    assert (overlay / "kustomization.yaml").read_text() == (
        "resources:\n- ../base\nimages:\n- name: hello\n  newTag: v1\n"
    )


def test_a_base_that_renames_the_image_gets_the_right_name_in_the_hint(tmp_path: Path) -> None:
    overlay = corpus_copy(tmp_path, "base-renames") / "overlay"
    result = runner.invoke(app, ["manifest", "set-image", str(overlay), "hello:v2"])
    assert result.exit_code == 8
    assert result.output.endswith("rewrites): myacr.azurecr.io/hello\n")


def test_a_remote_base_offline_is_edited_with_a_warning(tmp_path: Path) -> None:
    overlay = corpus_copy(tmp_path, "remote-base") / "overlay"
    spec = "ghcr.io/stefanprodan/podinfo:6.7.2"
    result = runner.invoke(app, ["manifest", "set-image", str(overlay), spec])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith(
        "ghcr.io/stefanprodan/podinfo:6.7.1 -> ghcr.io/stefanprodan/podinfo:6.7.2"
    )
    assert lines[1].startswith(
        f"  warning: not verified: {overlay}: a remote resource cannot be fetched from here: "
        "accumulating resources"
    )
    assert "run.go" not in result.output
    assert "E1" not in result.output
    assert "newTag: 6.7.2" in (overlay / "kustomization.yaml").read_text()


def test_helm_charts_without_enable_helm_say_how_to_pass_it(tmp_path: Path) -> None:
    app_dir = corpus_copy(tmp_path, "helm-charts") / "app"
    result = runner.invoke(app, ["manifest", "set-image", str(app_dir), "web:1.0.2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        f"  warning: not verified: {app_dir}: uses helmCharts, which kustomize renders "
        "only with --enable-helm"
    )


def test_helm_charts_render_with_enable_helm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helm = CACHE_BIN / "helm"
    if not helm.exists():
        pytest.fail(f"helm is missing at {helm}: run 'bash scripts/install-go-tools.sh'")
    monkeypatch.setenv("PATH", f"{CACHE_BIN}:{os.environ['PATH']}")
    app_dir = corpus_copy(tmp_path, "helm-charts") / "app"
    result = runner.invoke(
        app, ["manifest", "set-image", str(app_dir), "web=*:1.0.2", "--enable-helm"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == f"  verified with kustomize: {app_dir}"
    # a name the chart's containers do not use is refused, as for any overlay
    wrong = runner.invoke(app, ["manifest", "set-image", str(app_dir), "nginx:1", "--enable-helm"])
    assert wrong.exit_code == 8
    assert wrong.output.endswith("rewrites): web\n")


def test_set_image_on_a_file_names_the_directory_to_pass(manifests: Path) -> None:
    file = manifests / STAGING / "kustomization.yaml"
    result = runner.invoke(
        app, ["manifest", "set-image", str(file), "hello:v2"], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2  # a usage error: the argument names a file
    assert (
        f"Invalid value for 'DIR': '{file}' is a file; pass the directory that holds it "
        f"({file.parent})"
    ) in result.output


@pytest.mark.parametrize("name", ["kustomization.yml", "Kustomization"])
def test_update_finds_the_overlay_file_whatever_its_name(
    manifests: Path, tmp_path: Path, name: str
) -> None:
    staging = manifests / STAGING
    (staging / "kustomization.yaml").rename(staging / name)
    remote = make_remote(tmp_path, manifests, name="renamed.git")
    config = write_config(tmp_path, remote)
    ref = f"myacr.azurecr.io/hello:{SHA}@{DIGEST}"
    result = runner.invoke(app, ["manifest", "update", "staging", ref, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"({OLD} -> {ref}, attempts: 1)" in result.output
    assert f"digest: {DIGEST}" in show(remote, f"{STAGING}/{name}")
    listed = git("ls-tree", "--name-only", "main", f"{STAGING}/", cwd=remote).split()
    assert listed == [f"{STAGING}/{name}"]  # edited in place, no kustomization.yaml added


def test_update_of_an_unrenderable_overlay_says_what_was_not_verified(tmp_path: Path) -> None:
    layout = corpus_copy(tmp_path, "helm-charts")
    (layout / "case.toml").unlink()
    remote = make_remote(tmp_path, layout, name="charts.git")
    config = tmp_path / "charts.toml"
    config.write_text(
        '[app]\nname = "web"\n[registry]\nhost = "myacr.azurecr.io"\nrepository = "web"\n'
        f'[gitops]\nrepo = "{remote}"\n'
        '[gitops.environments.staging]\npath = "app"\nallow_unrendered = true\n'
    )
    ref = f"myacr.azurecr.io/web:{SHA}@{DIGEST}"
    result = runner.invoke(app, ["manifest", "update", "staging", ref, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        "  warning: not verified: app was not rendered: uses helmCharts, which kustomize "
        "renders only with --enable-helm"
    )
    assert f"digest: {DIGEST}" in show(remote, "app/kustomization.yaml")
