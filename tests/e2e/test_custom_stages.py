"""Custom stages of conveyor.toml on real podman: gates, stages after delivery, selection.

The custom stages run in the example's test image from the loopback
registry; only Trivy is a double, as in the example's own end-to-end test.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from e2e.conftest import World, git
from e2e.test_example_pipeline import statuses, summary

IMAGE = "127.0.0.1:5000/conveyor/python:3.11"


def add_stages(world: World, toml: str) -> None:
    config = world.app / "conveyor.toml"
    config.write_text(config.read_text() + "\n" + toml)


def test_a_failing_custom_gate_stops_publish(world: World) -> None:
    add_stages(
        world,
        f"""
[stages.style]
image = "{IMAGE}"
script = "echo 'app.py:1: E999 not linted' >&2; exit 3"
description = "the linter"
""",
    )
    head_before = git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp)
    sha = world.commit_app("lint fails")

    done = world.run("alpine-310.json")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "stage 'style' failed (exit code 3)" in done.stdout + done.stderr
    assert "E999 not linted" in done.stdout + done.stderr
    data = summary(world.app)
    assert statuses(data)["style"][0] == "failed"
    assert statuses(data)["publish"][0] == "skipped"
    assert "publish: skipped" in done.stdout
    # the stages as a JUnit report: the gate failed, publish was skipped
    runs = sorted((world.app / ".conveyor" / "runs").iterdir())
    report = ElementTree.parse(runs[-1] / "artifacts" / "stages.junit.xml").getroot()  # noqa: S314
    cases = {case.get("name"): case for case in report.iter("testcase")}
    failure = cases["style"].find("failure")
    assert failure is not None
    assert "stage 'style' failed (exit code 3)" in (failure.get("message") or "")
    assert cases["publish"].find("skipped") is not None
    assert cases["build"].find("failure") is None
    assert cases["build"].find("skipped") is None
    assert report.get("failures") == "1"
    # its output is kept among the run's artifacts
    logs = sorted((world.app / ".conveyor" / "runs").glob("*/artifacts/style/output.log"))
    assert "E999 not linted" in logs[-1].read_text()
    # nothing pushed, nothing committed
    assert world.inspect(sha).returncode != 0
    assert git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp) == head_before


def test_a_stage_after_the_manifest_gets_the_published_image(world: World) -> None:
    add_stages(
        world,
        f"""
[stages.style]
image = "{IMAGE}"
command = ["python3", "-c", "import app"]

[stages.e2e]
image = "{IMAGE}"
needs = ["manifest"]
script = "mkdir -p out && echo \\"$CONVEYOR_PUBLISH_IMAGE_REF $CONVEYOR_SHA\\" > out/seen.txt"
outputs = ["out/seen.txt"]

[stages.notify]
image = "{IMAGE}"
gate = false
command = ["true"]
""",
    )
    sha = world.commit_app("all green")

    done = world.run("alpine-310.json")

    assert done.returncode == 0, done.stdout + done.stderr
    digest = world.digest(sha)
    data = summary(world.app)
    order = [row["name"] for row in data["stages"]]
    assert order.index("style") < order.index("publish") < order.index("manifest")
    assert order.index("manifest") < order.index("e2e")
    assert all(status == "success" for status, _ in statuses(data).values())
    seen = Path(data["outputs"]["e2e"]["output.out/seen.txt"]).read_text()
    assert seen.split() == [f"{world.registry}/hello:{sha}@{digest}", sha]
    # the source tree is not where outputs land: the run's artifacts are
    assert "/.conveyor/runs/" in data["outputs"]["e2e"]["output.out/seen.txt"]


def test_only_and_skip_select_custom_stages(world: World) -> None:
    add_stages(
        world,
        f"""
[stages.style]
image = "{IMAGE}"
script = "echo linted"

[stages.types]
image = "{IMAGE}"
needs = ["style"]
script = "echo typed"
""",
    )
    sha = world.commit_app("selection")

    only = world.run("alpine-310.json", "--only", "types")

    assert only.returncode == 0, only.stdout + only.stderr
    ran = {n for n, (status, _) in statuses(summary(world.app)).items() if status == "success"}
    assert ran == {"style", "types"}
    assert world.inspect(sha).returncode != 0

    record = world.tmp / "run-id"
    skipped = world.run("alpine-310.json", "--skip", "types", "--run-id-file", str(record))

    # a gate skipped on request: nothing is published without it
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    # --run-id-file names this run: the run a CI step collects
    run_id = record.read_text().strip()
    assert sorted(p.name for p in (world.app / ".conveyor" / "runs").iterdir())[-1] == run_id
    rows = statuses(summary(world.app))
    assert rows["style"][0] == "success"
    assert rows["types"] == ("skipped", "requested with --skip")
    assert rows["publish"] == ("skipped", "dependency 'types' was skipped")
    assert world.inspect(sha).returncode != 0
