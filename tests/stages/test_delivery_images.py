"""The DAG of several images (``[images.<name>]``): per-image stages, gates, one manifest stage.

Pure wiring, read from real files through the loader; nothing runs (the
monorepo example runs for real in tests/e2e/test_monorepo.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ConfigError
from conveyor.pipeline import render
from conveyor.pipeline.graph import Pipeline
from conveyor.policy.reference import parse
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import delivery_pipeline
from conveyor.stages.manifest import image_for

SHA = "3f2a9c1d4e5b6a7980123456789abcdef0123456"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monorepo" / "conveyor.toml"

BASE = """\
[app]
name = "shop"

[registry]
host = "myacr.azurecr.io"
repository = "shop"

[gitops]
repo = "https://git.example.com/manifests.git"

[gitops.environments.staging]
path = "apps/shop/overlays/staging"

[images.api]
context = "services/api"

[images.web]
context = "services/web"
smoke = false
"""


def pipeline(tmp_path: Path, extra: str = "", base: str = BASE) -> Pipeline:
    path = tmp_path / "conveyor.toml"
    path.write_text(base + extra)
    config = load_config(path, env={})
    return delivery_pipeline(DeliveryContext(config, NoEngine(), SHA, tmp_path / "artifacts"))


def test_each_image_has_its_own_stages_and_one_manifest_stage_needs_every_publish(
    tmp_path: Path,
) -> None:
    built = pipeline(tmp_path)

    assert set(built.order) == {
        "build-api",
        "scan-api",
        "smoke-api",
        "publish-api",
        "build-web",
        "scan-web",
        "publish-web",
        "manifest",
        "policy",
        "report",
    }
    assert "smoke-web" not in built.order  # smoke = false
    assert built["scan-web"].needs == ("build-web",)
    assert built["smoke-api"].needs == ("build-api",)
    # every publish waits for every image's gates: one image failing pushes none
    for publish in ("publish-api", "publish-web"):
        assert set(built[publish].needs) == {
            "build-api",
            "build-web",
            "scan-api",
            "scan-web",
            "smoke-api",
        }
    assert built["manifest"].needs == ("publish-api", "publish-web")
    assert built["policy"].needs == ("manifest",)


def test_each_image_publishes_to_its_own_repository_under_the_sha(tmp_path: Path) -> None:
    built = pipeline(tmp_path)

    assert built["publish-api"].details["address"] == f"myacr.azurecr.io/shop/api:{SHA}"
    assert built["publish-web"].details["address"] == f"myacr.azurecr.io/shop/web:{SHA}"
    assert built["build-api"].details["build args"] == f"GIT_SHA={SHA}"
    assert built["build-api"].details["context"] == str(tmp_path / "services" / "api")
    manifest = built["manifest"].details
    assert manifest["image api"] == "api"  # image_name defaults to the image's name
    assert manifest["sets web"] == f"myacr.azurecr.io/shop/web:{SHA}@sha256:<pushed digest>"


def test_a_gate_blocks_every_publish_and_a_stage_after_publish_waits_for_all(
    tmp_path: Path,
) -> None:
    built = pipeline(
        tmp_path,
        """
[stages.lint]
image = "a/lint:1"
command = ["lint"]

[stages.publish-docs]
image = "a/docs:1"
command = ["docs"]

[stages.e2e]
image = "a/e2e:1"
command = ["e2e"]
needs = ["publish"]

[stages.sbom]
image = "a/sbom:1"
command = ["sbom"]
needs = ["build", "scan"]
""",
    )

    for publish in ("publish-api", "publish-web"):
        assert "lint" in built[publish].needs
        # a user's stage named publish-<something> is a gate, not a publish stage
        assert "publish-docs" in built[publish].needs
    assert "lint" not in built["publish-docs"].needs
    # a group name means every image's stage of that kind
    assert set(built["e2e"].needs) == {"publish-api", "publish-web"}
    assert "e2e" not in built["manifest"].needs
    assert "e2e" not in built["publish-api"].needs
    assert set(built["sbom"].needs) == {"build-api", "build-web", "scan-api", "scan-web"}
    assert "sbom" in built["publish-api"].needs  # it depends on no publish: a gate


def test_built_in_options_apply_to_every_image_and_their_needs_expand(tmp_path: Path) -> None:
    built = pipeline(
        tmp_path,
        """
[stages.build]
timeout = "5m"
retries = 2

[stages.smoke]
enabled = false

[stages.lint]
image = "a/lint:1"
command = ["lint"]
gate = false

[stages.publish]
needs = ["lint", "smoke"]
""",
    )

    assert not [name for name in built.order if name.startswith("smoke")]
    for build in ("build-api", "build-web"):
        assert (built[build].timeout, built[build].retries) == (300.0, 2)
    # a need on the disabled smoke group is dropped, the named stage kept
    assert "lint" in built["publish-web"].needs


def test_the_app_shorthand_keeps_its_stage_names(tmp_path: Path) -> None:
    shorthand = BASE.split("[images.api]", maxsplit=1)[0]

    built = pipeline(tmp_path, base=shorthand)

    assert [n for n in built.order if n != "report"] == [
        "build",
        "scan",
        "smoke",
        "publish",
        "manifest",
        "policy",
    ]
    assert built["publish"].details["address"] == f"myacr.azurecr.io/shop:{SHA}"
    assert built["manifest"].details["image"] == "shop"


def test_an_unknown_per_image_stage_in_needs_names_the_stages(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        pipeline(tmp_path, '[stages.lint]\nimage = "a/b:1"\ncommand = ["x"]\nneeds = ["scan-db"]\n')

    assert caught.value.field == "stages.lint.needs"
    assert "'scan-db' is not a stage" in str(caught.value)
    assert "scan-api" in str(caught.value.hint)


def test_the_monorepo_example_wires_two_images(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, env={})
    built = delivery_pipeline(DeliveryContext(config, NoEngine(), SHA, tmp_path))

    assert {"publish-api", "publish-web", "smoke-api", "smoke-web"} <= set(built.order)
    assert [spec.repository for spec in config.image_specs()] == ["shop/api", "shop/web"]
    assert [spec.image_name("staging") for spec in config.image_specs()] == [
        "127.0.0.1:5000/shop/api",
        "127.0.0.1:5000/shop/web",
    ]


def test_graph_draws_each_image_as_a_group(tmp_path: Path) -> None:
    built = pipeline(tmp_path)

    mermaid = render.to_mermaid(built)
    dot = render.to_dot(built)
    stages = {s["name"]: s for s in json.loads(render.to_json(built))["stages"]}

    api = mermaid.split('subgraph image_api["image api"]\n', 1)[1].split("    end\n", 1)[0]
    assert [line.strip() for line in api.splitlines()] == [
        'build_api["build-api"]',
        'scan_api["scan-api"]',
        'smoke_api["smoke-api"]',
        'publish_api["publish-api"]',
    ]
    assert "    publish_web --> manifest" in mermaid
    assert 'subgraph "cluster_web" {\n        label="image web";' in dot
    assert stages["scan-web"]["image"] == "web"
    assert "image" not in stages["manifest"]


def test_manifest_update_pins_the_image_whose_repository_the_reference_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "conveyor.toml"
    path.write_text(BASE + '\n[images.web.image_name]\nstaging = "shop-web"\n')
    config = load_config(path, env={})
    ref = parse(f"myacr.azurecr.io/shop/web:{SHA}@sha256:{'b' * 64}")

    assert image_for(config, "staging", ref) == ("shop-web", ref)
    assert image_for(config, "staging", parse(f"myacr.azurecr.io/shop/api:{SHA}"))[0] == "api"
    with pytest.raises(ConfigError) as caught:
        image_for(config, "staging", parse(f"myacr.azurecr.io/shop:{SHA}"))
    assert "myacr.azurecr.io/shop/api, myacr.azurecr.io/shop/web" in str(caught.value.hint)
