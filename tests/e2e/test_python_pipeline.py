"""A Python pipeline (``run.pipeline``) on real podman, in the example's world.

Its stages run containers through ``ctx.run`` (the custom stages' path) in
the example's test image from the loopback registry; one replaces the
built-in smoke stage, runs it, then probes the image itself through
``ctx.service``.  Outputs flow both ways: a Python stage's to a TOML stage
(``CONVEYOR_<STAGE>_<KEY>``) and a TOML stage's to a Python stage
(``ctx.outputs``).  Only Trivy is a double, as in the example's own test.
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e.conftest import World, git
from e2e.test_example_pipeline import statuses, summary

IMAGE = "127.0.0.1:5000/conveyor/python:3.11"

PIPELINE = f'''\
"""The example's Python stages."""

from pathlib import Path

import httpx

from conveyor.dsl import Service, stage
from conveyor.stages.context import built_image

IMAGE = "{IMAGE}"


@stage(description="count app.py's lines in a container")
async def count(ctx):
    ran = await ctx.run(
        IMAGE,
        "mkdir -p out && wc -l < app.py > out/lines.txt && echo counted on $CONVEYOR_SHA",
        outputs=["out/lines.txt"],
    )
    lines = ran.files["out/lines.txt"].read_text().strip()
    await ctx.run(IMAGE, ["echo", "a second run"])
    return {{"lines": lines, "said": ran.output.strip()}}


@stage(needs=["echo-count"])
async def agree(ctx):
    echoed = Path(ctx.outputs["echo-count"]["output.seen.txt"]).read_text().split()
    if echoed != [ctx.outputs["count"]["lines"], ctx.sha]:
        raise RuntimeError(f"the TOML stage saw {{echoed}}")
    probe = await ctx.run(IMAGE, ["python3", "-c", "import sys; sys.exit(4)"], check=False)
    return {{"agreed": "yes", "probe exit": str(probe.exit_code)}}


@stage(needs=["build"], gate=False, description="the app built again, with another version")
async def rebuild(ctx):
    image = await ctx.build(".", build_args={{"BASE_IMAGE": IMAGE, "GIT_SHA": "rebuilt"}})
    async with ctx.service(image, 8080) as endpoint:
        async with httpx.AsyncClient() as client:
            answer = await client.get(endpoint.url + "/version", timeout=10)
    return {{"version": answer.json()["version"]}}


@stage(needs=["build"], gate=False, description="the built image as a service of a container")
async def probe_app(ctx):
    image = built_image(ctx.outputs["build"])
    fetch = "import urllib.request as u; print(u.urlopen('http://app:8080/version').read().decode())"
    ran = await ctx.run(
        IMAGE,
        ["python3", "-c", fetch],
        services=[Service(name="app", image=image.id, port=8080, built=image)],
    )
    return {{"answer": ran.output.strip()}}


@stage(name="smoke", replaces=True, description="the built-in smoke test, then our own probe")
async def smoke(ctx):
    outputs = await ctx.builtin()
    async with ctx.service(built_image(ctx.outputs["build"]), 8080) as endpoint:
        async with httpx.AsyncClient() as client:
            answer = await client.get(endpoint.url + "/version", timeout=10)
    return {{**outputs, "version": answer.json()["version"]}}
'''

TOML = f"""
[stages.echo-count]
image = "{IMAGE}"
needs = ["count"]
script = "echo \\"$CONVEYOR_COUNT_LINES $CONVEYOR_SHA\\" > seen.txt"
outputs = ["seen.txt"]
"""


def use_pipeline(world: World, pipeline: str, toml: str = TOML) -> None:
    """``ci/pipeline.py`` in place of the example's own pipeline file, ``toml`` added."""
    (world.app / "ci").mkdir()
    (world.app / "ci" / "pipeline.py").write_text(pipeline)
    config = world.app / "conveyor.toml"
    text = config.read_text()
    assert 'pipeline = "pipeline.py"' in text
    ours = text.replace('pipeline = "pipeline.py"', 'pipeline = "ci/pipeline.py"')
    config.write_text(ours + toml)


def test_python_stages_run_containers_and_share_outputs_with_toml_stages(world: World) -> None:
    use_pipeline(world, PIPELINE)
    sha = world.commit_app("python pipeline")

    done = world.run("alpine-310.json")

    assert done.returncode == 0, done.stdout + done.stderr
    data = summary(world.app)
    assert all(status == "success" for status, _ in statuses(data).values()), statuses(data)
    order = [row["name"] for row in data["stages"]]
    assert order.index("count") < order.index("echo-count") < order.index("agree")
    assert order.index("agree") < order.index("publish")
    assert order.index("smoke") < order.index("publish")
    outputs = data["outputs"]
    lines = str(len((world.app / "app.py").read_text().splitlines()))
    # ctx.run ran in the container, with the source mounted and the commit told
    assert outputs["count"] == {"lines": lines, "said": f"counted on {sha}"}
    # the TOML stage read the Python stage's output, the next Python stage read the TOML one's
    assert Path(outputs["echo-count"]["output.seen.txt"]).read_text().split() == [lines, sha]
    assert outputs["agree"] == {"agreed": "yes", "probe exit": "4"}
    # the replaced smoke ran the built-in (its url, attempts) and then its own probe
    assert outputs["smoke"]["version"] == sha
    assert outputs["smoke"]["url"].endswith("/version")
    assert int(outputs["smoke"]["attempts"]) >= 1
    # ctx.build built through the engine, with the arguments given, and ctx.service ran it
    assert outputs["rebuild"] == {"version": "rebuilt"}
    # ctx.run started the built image as a service its container reached by name
    assert json.loads(outputs["probe-app"]["answer"]) == {"app": "hello", "version": sha}
    # a second ctx.run of a stage keeps its own log
    artifacts = Path(outputs["echo-count"]["log"]).parents[1]
    assert (artifacts / "count" / "output.log").read_text() == f"counted on {sha}\n"
    assert (artifacts / "count" / "run-2" / "output.log").read_text() == "a second run\n"
    # and it was delivered
    assert world.digest(sha).startswith("sha256:")


FAILING = f'''\
from conveyor.dsl import stage


@stage
async def types(ctx):
    await ctx.run("{IMAGE}", "echo 'app.py:1: not linted' >&2; exit 3")
    return {{"never": "returned"}}
'''


def test_a_failing_python_gate_stops_publish(world: World) -> None:
    use_pipeline(world, FAILING, "")
    head_before = git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp)
    sha = world.commit_app("python gate fails")

    done = world.run("alpine-310.json")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "error in stage types: stage 'types' failed (exit code 3)" in done.stderr
    assert "app.py:1: not linted" in done.stderr
    rows = statuses(summary(world.app))
    assert rows["types"][0] == "failed"
    assert rows["publish"][0] == "skipped"
    assert world.inspect(sha).returncode != 0
    assert git("ls-remote", str(world.manifests), "refs/heads/main", cwd=world.tmp) == head_before
    assert "types" not in summary(world.app)["outputs"]  # a failed stage hands nothing on
