"""The example pipeline end to end on PodmanEngine: real containers, registry, git, kustomize.

Only the Trivy process is a double (``tests/doubles/trivy``, a replay of a
recorded report): Trivy and its vulnerability database cannot be fetched here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from e2e.conftest import World, git, session_leftovers
from telemetry.conftest import OtlpReceiver

STAGING = "apps/hello/overlays/staging"
PRODUCTION = "apps/hello/overlays/production"

pytestmark = pytest.mark.timeout(900)


def registry_digest(registry: str, sha: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry}/hello:{sha}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def staging_image(checkout: Path) -> dict[str, str]:
    data = YAML(typ="safe").load((checkout / STAGING / "kustomization.yaml").read_text())
    return next(i for i in data["images"] if i["name"] == "127.0.0.1:5000/hello")


def spans(app: Path) -> list[dict[str, Any]]:
    runs = sorted((app / ".conveyor" / "runs").iterdir())
    lines = (runs[-1] / "spans.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def summary(app: Path) -> dict[str, Any]:
    """The last run's summary.json, written by the always-run report stage."""
    runs = sorted((app / ".conveyor" / "runs").iterdir())
    data: dict[str, Any] = json.loads((runs[-1] / "artifacts" / "summary.json").read_text())
    return data


def statuses(data: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {row["name"]: (row["status"], row["reason"]) for row in data["stages"]}


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def test_example_pipeline_publishes_pins_and_traces(
    world: World, otlp_receiver: OtlpReceiver
) -> None:
    before = world.manifest_checkout()
    production_before = (before / PRODUCTION / "kustomization.yaml").read_bytes()
    sha = world.commit_app("first change")
    # the example as shipped: its images come from the loopback registry, by address,
    # while this run publishes to another registry (the test's own)
    shipped = (world.app / "conveyor.toml").read_text()
    assert 'BASE_IMAGE = "127.0.0.1:5000/conveyor/python:3.11"' in shipped
    assert 'image = "127.0.0.1:5000/conveyor/python:3.11"' in shipped
    assert world.registry != "127.0.0.1:5000"

    done = world.run(
        "alpine-310.json",
        env={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
            "TRACEPARENT": f"00-{TRACE_ID}-{PARENT_SPAN}-01",
        },
    )

    assert done.returncode == 0, done.stdout + done.stderr
    # the services of smoke and integration were removed beside the later stages,
    # and the run waited for that: nothing of its engine session is left
    assert session_leftovers(sorted((world.app / ".conveyor" / "runs").iterdir())[-1]) == ([], [])
    # the registry holds hello:<sha>, and the staging kustomization pins its digest
    inspected = registry_digest(world.registry, sha)
    assert inspected.returncode == 0, inspected.stderr
    digest = json.loads(inspected.stdout)["Digest"]
    after = world.manifest_checkout()
    assert staging_image(after) == {
        "name": "127.0.0.1:5000/hello",
        "newName": f"{world.registry}/hello",
        "newTag": sha,
        "digest": digest,
    }
    assert f"published {world.registry}/hello:{sha}@{digest}" in done.stdout
    # kustomize renders that exact image; production is untouched
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(after / STAGING)], capture_output=True, text=True, check=True
    ).stdout
    assert f"image: {world.registry}/hello:{sha}@{digest}" in rendered
    assert (after / PRODUCTION / "kustomization.yaml").read_bytes() == production_before
    # one commit on top, naming the source SHA and the image; linear history
    log = git("log", "--format=%s%n%b", "-1", cwd=after)
    assert sha[:12] in log
    assert f"{world.registry}/hello:{sha}@{digest}" in log
    assert git("rev-list", "--count", "HEAD", cwd=after) == "2"
    # the Trivy double received a scan of the exported image tarball
    calls = [json.loads(line) for line in world.trivy_log.read_text().splitlines()]
    assert len(calls) == 1
    argv = calls[0]["argv"]
    assert argv[:2] == ["image", "--input"]
    assert argv[2].endswith("image.tar")
    assert argv[argv.index("--format") + 1] == "json"
    assert "--ignore-unfixed" in argv
    # the trace: a run span and one span per stage, all in one trace
    records = spans(world.app)
    stage_spans = sorted(r["name"] for r in records if str(r["name"]).startswith("stage "))
    assert stage_spans == sorted(
        f"stage {s}"
        for s in (
            *("test", "build", "lint", "scan", "smoke", "integration", "publish", "manifest"),
            *("policy", "release-notes", "report"),
        )
    )
    assert {r["trace_id"] for r in records} == {TRACE_ID}
    assert sum(1 for r in records if r["name"] == "conveyor.run") == 1
    # the same spans went to the OTLP/HTTP receiver, under the TRACEPARENT given
    exported = otlp_receiver.spans()
    by_name = {span.name: span for span in exported}
    assert sorted(n for n in by_name if n.startswith("stage ")) == stage_spans
    assert {span.trace_id.hex() for span in exported} == {TRACE_ID}
    run_span = by_name["conveyor.run"]
    assert run_span.parent_span_id.hex() == PARENT_SPAN
    assert all(by_name[name].parent_span_id == run_span.span_id for name in stage_spans)
    publish_attributes = {a.key: a.value.string_value for a in by_name["stage publish"].attributes}
    assert publish_attributes["conveyor.status"] == "success"
    assert publish_attributes["conveyor.output.image.digest"] == digest
    # summary.json: every stage before the report, its status, time and attempts
    data = summary(world.app)
    assert data["ok"] is True
    assert data["sha"] == sha
    assert [row["name"] for row in data["stages"]] == [
        "test",
        "build",
        "lint",
        "scan",
        "smoke",
        "integration",
        "publish",
        "manifest",
        "release-notes",
        "policy",
    ]
    assert all(row["status"] == "success" and row["reason"] == "" for row in data["stages"])
    assert all(row["attempts"] == 1 and row["duration"] > 0 for row in data["stages"])
    assert data["outputs"]["publish"]["image.ref"] == f"{world.registry}/hello:{sha}@{digest}"
    # the example's own stages: the lint gate, the integration checks against the built
    # image served by name, the Python stage's release notes naming the published image
    assert data["outputs"]["integration"]["tests"] == "3"
    assert data["outputs"]["integration"]["failures"] == "0"
    notes = Path(data["outputs"]["release-notes"]["notes"]).read_text()
    assert f"- image: `{world.registry}/hello:{sha}@{digest}`" in notes
    assert "- unit tests: 4 run, 0 failed" in notes


def test_critical_finding_stops_the_dag_before_publish(world: World) -> None:
    head_before = git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp)
    sha = world.commit_app("vulnerable change")

    done = world.run("debian-buster.json")

    assert done.returncode == 5, done.stdout + done.stderr
    assert "scan: failed" in done.stdout
    assert "publish: skipped (dependency 'scan' failed)" in done.stdout
    assert "manifest: skipped (dependency 'publish' was skipped)" in done.stdout
    assert "CVE-2019-" in done.stdout + done.stderr
    data = summary(world.app)
    assert data["ok"] is False
    assert statuses(data)["scan"][0] == "failed"
    assert "CVE-2019-" in statuses(data)["scan"][1]
    assert statuses(data)["publish"] == ("skipped", "dependency 'scan' failed")
    assert statuses(data)["manifest"] == ("skipped", "dependency 'publish' was skipped")
    assert "publish" not in data["outputs"]
    # nothing pushed, nothing committed
    assert registry_digest(world.registry, sha).returncode != 0
    assert git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp) == head_before


def test_uncommitted_changes_are_tested_but_never_published(world: World) -> None:
    head_before = git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp)
    sha = world.commit_app("a change")
    app_py = world.app / "app.py"
    app_py.write_text(app_py.read_text() + "\n# an edit nobody committed\n")

    done = world.run("alpine-310.json")

    assert done.returncode == 4, done.stdout + done.stderr
    data = summary(world.app)
    assert statuses(data)["test"][0] == "success"  # the gates ran on the edited tree
    assert statuses(data)["publish"] == (
        "failed",
        f"image '{world.registry}/hello:{sha}' refused: not commit {sha[:12]}: "
        "the source has uncommitted changes to app.py",
    )
    assert statuses(data)["manifest"][0] == "skipped"
    assert "--skip publish" in done.stdout + done.stderr
    assert registry_digest(world.registry, sha).returncode != 0
    assert git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp) == head_before
