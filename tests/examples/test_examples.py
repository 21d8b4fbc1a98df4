"""The shipped example: its configuration loads and its manifests render."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from conveyor.config import load_config
from conveyor.config.models import Promotion

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
OVERLAYS = EXAMPLES / "manifests" / "apps" / "hello" / "overlays"


def test_hello_configuration_loads_with_the_demo_values() -> None:
    config = load_config(EXAMPLES / "hello" / "conveyor.toml", env={})
    assert config.app.name == "hello"
    # registry addresses only: the same file runs on Dagger, which has no local images
    assert config.app.build_args == {"BASE_IMAGE": "127.0.0.1:5000/conveyor/python:3.11"}
    assert config.registry.image == "127.0.0.1:5000/hello"
    assert config.registry.insecure is True
    assert config.stages.test is not None
    assert config.stages.test.image == "127.0.0.1:5000/conveyor/python:3.11"
    assert config.stages.test.command == ["python3", "-m", "pytest", "-q", "--junitxml=junit.xml"]
    assert config.stages.scan.fail_on == ["HIGH", "CRITICAL"]
    assert config.gitops is not None
    assert config.resolve(config.gitops.repo) == (
        EXAMPLES.parent / ".conveyor" / "demo" / "manifests.git"
    )
    environments = config.gitops.environments
    assert environments["staging"].promotion is Promotion.COMMIT
    assert environments["production"].promotion is Promotion.PULL_REQUEST
    for name, environment in environments.items():
        assert (EXAMPLES / "manifests" / environment.path / "kustomization.yaml").is_file(), name
    assert config.policy.allowed_registries == [r"^127\.0\.0\.1:5000/.+$"]
    assert re.match(config.policy.allowed_registries[0], "127.0.0.1:5000/hello:abc")


def test_dockerfile_takes_the_base_image_and_sha_as_build_args() -> None:
    lines = (EXAMPLES / "hello" / "Dockerfile").read_text().splitlines()
    assert "ARG BASE_IMAGE=python:3.12-slim" in lines
    assert "FROM ${BASE_IMAGE}" in lines
    assert "ARG GIT_SHA=dev" in lines
    assert any(line.startswith("ENV APP_VERSION=${GIT_SHA}") for line in lines)


@pytest.mark.parametrize(
    ("environment", "namespace", "replicas"),
    [("staging", "hello-staging", 1), ("production", "hello-production", 2)],
)
def test_overlay_renders_a_digest_pinned_image(
    environment: str, namespace: str, replicas: int
) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAYS / environment)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    documents = {doc["kind"]: doc for doc in YAML(typ="safe").load_all(rendered)}
    assert set(documents) == {"Deployment", "Service"}
    deployment = documents["Deployment"]
    assert deployment["metadata"]["namespace"] == namespace
    assert deployment["spec"]["replicas"] == replicas
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert re.fullmatch(
        r"127\.0\.0\.1:5000/hello:[0-9a-f]{40}@sha256:[0-9a-f]{64}", container["image"]
    ), container["image"]
    selector = documents["Service"]["spec"]["selector"]
    assert selector == {"app.kubernetes.io/name": "hello"}
