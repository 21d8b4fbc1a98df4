"""``conveyor policy check`` over a tree with broken directories, charts and custom resources.

tests/resources/policy-tree holds: a good app, a kustomization naming a
missing file, a directory with two kustomization files, helmCharts with a
local chart, a PodTemplate and a custom resource with ``:latest`` images, a
Flux HelmRelease and a k3s HelmChart whose values pull images from public
registries, an empty Component, and a cluster overlay including a Component.  The configuration has
only ``[policy]``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app

runner = CliRunner()
TREE = Path(__file__).resolve().parents[1] / "resources" / "policy-tree"
CACHE_BIN = Path("/var/cache/conveyor/bin")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(TREE, tmp_path / "tree")
    (tmp_path / "conveyor.toml").write_text(
        "[policy]\nallowed_registries = ['^myacr\\.azurecr\\.io/.+$']\n"
    )
    return tmp_path / "tree"


def check(tree: Path, *args: str) -> tuple[int, dict[str, object]]:
    config = str(tree.parent / "conveyor.toml")
    result = runner.invoke(
        app, ["policy", "check", str(tree), "--format", "json", "--config", config, *args]
    )
    return result.exit_code, json.loads(result.output)


def statuses(report: dict[str, object]) -> dict[str, str]:
    directories = report["directories"]
    assert isinstance(directories, list)
    return {d["directory"]: d["status"] for d in directories}


def test_every_directory_is_reported_and_broken_ones_do_not_hide_the_others(tree: Path) -> None:
    code, report = check(tree)
    assert code == 4  # violations win over directories that could not be rendered
    assert statuses(report) == {
        "apps/broken": "failed",
        "apps/chart": "failed",
        "apps/crs": "checked",
        "apps/good": "checked",
        "apps/helmrelease": "checked",
        "apps/twofiles": "failed",
        "clusters/prod": "checked",
        "components/empty": "component",
        "components/labels": "component",
    }
    failed = {f["directory"]: f["reason"] for f in report["failed"]}  # type: ignore[union-attr]
    assert failed["apps/broken"].startswith("not rendered: kustomize could not build it: ")
    assert "missing.yaml" in failed["apps/broken"]
    assert "E1" not in failed["apps/broken"]
    assert failed["apps/chart"] == (
        "not rendered: uses helmCharts, which kustomize renders only with --enable-helm"
    )
    assert failed["apps/twofiles"] == (
        "not rendered: has more than one kustomization file (kustomization.yaml, kustomization.yml)"
    )


def test_containers_anywhere_and_helm_values_are_checked(tree: Path) -> None:
    _, report = check(tree)
    found = {(v["where"], v["rule"]) for v in report["violations"]}  # type: ignore[union-attr]
    assert ("apps/crs: PodTemplate/runner container runner", "mutable-tag") in found
    assert ("apps/crs: Pipeline/build container step", "mutable-tag") in found
    assert (
        "apps/helmrelease: HelmRelease/kube-system/aws-lb spec.values.image",
        "registry-not-allowed",
    ) in found
    assert (
        "apps/helmrelease: HelmRelease/kube-system/aws-lb spec.values.webhook.image",
        "registry-not-allowed",
    ) in found
    assert (
        "apps/helmrelease: HelmChart/kube-system/traefik spec.valuesContent.image",
        "registry-not-allowed",
    ) in found
    assert (
        "apps/helmrelease: HelmChart/kube-system/traefik spec.set.proxy.image",
        "registry-not-allowed",
    ) in found
    images = {
        i["image"]
        for d in report["directories"]  # type: ignore[union-attr]
        for i in d["images"]
    }
    assert "public.ecr.aws/eks/aws-load-balancer-controller:v2.8.1" in images
    assert "docker.io/traefik:v3.1.2" in images
    assert "docker.io/envoyproxy/envoy:v1.31.0" in images
    uninspected = report["uninspected"]
    assert isinstance(uninspected, list)
    assert (
        "apps/helmrelease: HelmRelease/kube-system/aws-lb spec.values.sidecar.image "
        "(repository public.ecr.aws/eks/sidecar) has no tag or digest: the chart's default applies"
    ) in uninspected
    assert (
        "apps/helmrelease: HelmRelease/kube-system/aws-lb: spec.valuesFrom (values from "
        "ConfigMaps or Secrets) is not read"
    ) in uninspected
    assert any(u.startswith("apps/crs: Pipeline/build: spec.notifier.image") for u in uninspected)


def test_exclude_skips_directories_and_a_clean_rest_exits_zero(tree: Path) -> None:
    code, report = check(
        tree,
        "--exclude",
        "apps/broken",
        "--exclude",
        "apps/twofiles",
        "--exclude",
        "apps/chart",
        "--exclude",
        "apps/crs",
        "--exclude",
        "apps/helm*",
    )
    assert code == 0
    assert statuses(report)["apps/broken"] == "excluded"
    assert statuses(report)["apps/good"] == "checked"
    assert report["failed"] == []


def test_a_directory_that_fails_gives_the_gitops_code(tree: Path) -> None:
    code, report = check(tree, "--exclude", "apps/crs", "--exclude", "apps/helmrelease")
    assert code == 8
    assert report["violations"] == []
    assert len(report["failed"]) == 3  # type: ignore[arg-type]


def test_enable_helm_renders_the_chart(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (CACHE_BIN / "helm").exists():
        pytest.fail(
            f"helm is missing at {CACHE_BIN / 'helm'}: run bash scripts/install-go-tools.sh"
        )
    monkeypatch.setenv("PATH", f"{CACHE_BIN}{os.pathsep}{os.environ['PATH']}")
    _, report = check(tree, "--enable-helm")
    assert statuses(report)["apps/chart"] == "checked"
    chart = next(d for d in report["directories"] if d["directory"] == "apps/chart")  # type: ignore[union-attr]
    assert chart["images"] == [{"image": "web:1.0.0", "where": "Deployment/web container web"}]


def test_table_lists_each_directory_and_the_hint_to_enable_helm(tree: Path) -> None:
    config = str(tree.parent / "conveyor.toml")
    result = runner.invoke(app, ["policy", "check", str(tree), "--config", config])
    lines = result.output.splitlines()
    assert "checked   apps/good: 1 image(s), 0 violation(s)" in lines
    assert (
        "component components/labels: a Component: checked where it is included (clusters/prod)"
    ) in lines
    assert (
        "component components/empty: a Component that no kustomization under tree includes: "
        "nothing renders it, not checked"
    ) in lines
    assert (
        "apps/chart: hint: helmCharts need helm: pass --enable-helm (conveyor manifest "
        "set-image, conveyor policy check) or set gitops.environments.<env>.enable_helm = true, "
        "with helm on PATH"
    ) in lines
    assert (
        lines[-1] == "8 image(s) in 4 kustomization(s): 13 violation(s); 3 directories not rendered"
    )
