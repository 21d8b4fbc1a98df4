"""``conveyor plan`` of the monorepo example: each image's stages, with their details."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monorepo" / "conveyor.toml"
SHA = "0123456789abcdef0123456789abcdef01234567"
runner = CliRunner()


@pytest.fixture(autouse=True)
def source_sha(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_SOURCE_SHA", SHA)


def test_plan_shows_each_images_build_and_address() -> None:
    result = runner.invoke(app, ["plan", "--config", str(EXAMPLE)])

    assert result.exit_code == 0, result.output
    sections = {
        block.splitlines()[0].split(" ", 1)[0].rstrip(":"): block
        for block in result.output.split("\n\n")[1:]
    }
    assert f"context: {EXAMPLE.parent / 'services' / 'api'}" in sections["build-api"]
    assert f"GIT_SHA={SHA}" in sections["build-web"]
    assert "paths: services/web" in sections["build-web"]
    assert f"address: 127.0.0.1:5000/shop/web:{SHA}" in sections["publish-web"]
    assert "(needs publish-api, publish-web)" in sections["manifest"]
    assert f"sets api: 127.0.0.1:5000/shop/api:{SHA}@sha256:<pushed digest>" in sections["manifest"]


def test_skip_with_a_group_name_skips_every_images_stage() -> None:
    result = runner.invoke(app, ["plan", "--config", str(EXAMPLE), "--skip", "scan"])

    assert result.exit_code == 0, result.output
    assert "scan-api (needs build-api): skip - requested with --skip" in result.output
    assert "scan-web (needs build-web): skip - requested with --skip" in result.output
    assert "smoke-web (needs build-web): run the image web" in result.output


def test_only_an_images_stage_runs_what_it_needs() -> None:
    result = runner.invoke(app, ["plan", "--config", str(EXAMPLE), "--only", "smoke-web"])

    assert result.exit_code == 0, result.output
    assert "build-web: build the image web" in result.output
    assert "build-api: skip - not selected by --only smoke-web" in result.output
