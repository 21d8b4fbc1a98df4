"""Python stages (``run.pipeline``) in the delivery DAG: wired like TOML stages, or in a
replaced built-in's place; run with their context, their outputs checked.

The stages that run here use no container (the engine refuses every
operation); ``tests/e2e/test_python_pipeline.py`` runs them on podman.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config.loader import load_config
from conveyor.engines.unavailable import NoEngine
from conveyor.errors import ConfigError, PolicyError, StageOutputError
from conveyor.pipeline.graph import Outputs, StageInputs
from conveyor.pipeline.result import Status
from conveyor.stages.context import DeliveryContext
from conveyor.stages.delivery import StageDefinition, deliver, delivery_pipeline
from conveyor.stages.python import python_definitions

SHA = "0123456789abcdef0123456789abcdef01234567"

CONFIG = """
[app]
name = "hello"

[registry]
host = "127.0.0.1:5000"
repository = "team/hello"

[gitops]
repo = "https://git.example.com/manifests.git"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"

[run]
pipeline = "ci/pipeline.py"
"""

TOML_STAGE = """
[stages.types]
image = "127.0.0.1:5000/conveyor/python:3.11"
command = ["true"]
needs = ["lint"]
"""

PIPELINE = '''\
from conveyor.dsl import stage


@stage(needs=["build"])
async def lint(ctx):
    """Lint the code."""
    return {"count": "3", "sha": ctx.sha}


@stage(needs=["lint"], gate=False, timeout="2m", retries=1)
async def report_lint(ctx):
    return {"seen": ctx.outputs["lint"]["count"], "dir": str(ctx.artifacts)}


@stage(needs=["manifest"])
async def announce(ctx):
    return None
'''


def project(tmp_path: Path, pipeline: str, extra: str = "") -> DeliveryContext:
    (tmp_path / "ci").mkdir(exist_ok=True)
    (tmp_path / "ci" / "pipeline.py").write_text(pipeline, encoding="utf-8")
    (tmp_path / "conveyor.toml").write_text(CONFIG + extra, encoding="utf-8")
    config = load_config(tmp_path / "conveyor.toml", env={})
    return DeliveryContext(config, NoEngine(), SHA, tmp_path / "artifacts")


def test_python_stages_join_the_dag_like_toml_stages(tmp_path: Path) -> None:
    pipeline = delivery_pipeline(project(tmp_path, PIPELINE, TOML_STAGE))

    # a gate: publish waits for it (and for the TOML stage that needs it)
    assert pipeline["lint"].needs == ("build",)
    assert {"lint", "types"} <= set(pipeline["publish"].needs)
    # gate=False gates nothing; a stage needing the manifest runs after it
    assert "report-lint" not in pipeline["publish"].needs
    assert pipeline["announce"].needs == ("manifest",)
    assert pipeline["report-lint"].timeout == 120.0
    assert pipeline["report-lint"].retries == 1
    assert pipeline["lint"].timeout == 1800.0
    # described with where they were written
    assert pipeline["lint"].description == "Lint the code. (ci/pipeline.py:4)"
    assert pipeline["announce"].description == "Python stage (ci/pipeline.py:15)"
    assert pipeline["lint"].details == {"defined in": "ci/pipeline.py:4 lint"}
    order = pipeline.order
    assert order.index("lint") < order.index("types") < order.index("publish")
    assert order.index("manifest") < order.index("announce")


@pytest.mark.anyio
async def test_outputs_flow_to_later_python_stages(tmp_path: Path) -> None:
    ctx = project(tmp_path, PIPELINE.replace('needs=["build"]', "needs=[]"))

    _, result = await deliver(ctx, only=["report-lint"])

    assert result["lint"].status is Status.SUCCESS
    assert result["lint"].outputs == {"count": "3", "sha": SHA}
    assert result["report-lint"].outputs == {
        "seen": "3",
        "dir": str(tmp_path / "artifacts" / "report-lint"),
    }
    assert (tmp_path / "artifacts" / "report-lint").is_dir()
    assert result["build"].status is Status.SKIPPED


REPLACING = """\
from conveyor.dsl import stage


@stage(name="smoke", replaces=True, needs=["lint"], description="smoke, then more")
async def my_smoke(ctx):
    before = dict(ctx.outputs)
    outputs = await ctx.builtin()
    return {**outputs, "wrapped": "yes", "before": ",".join(sorted(before))}


@stage
async def lint(ctx):
    return {}
"""


def test_a_replacing_stage_keeps_the_builtins_place(tmp_path: Path) -> None:
    pipeline = delivery_pipeline(project(tmp_path, REPLACING))

    assert pipeline["smoke"].needs == ("build", "lint")
    assert "smoke" in pipeline["publish"].needs
    assert pipeline["smoke"].description == (
        "smoke, then more (ci/pipeline.py:4, replaces the built-in)"
    )
    assert pipeline["smoke"].details["replaced by"] == "ci/pipeline.py:4 smoke"
    assert pipeline["smoke"].details["probe"] == "http://<service>:8080/version"
    assert list(pipeline.order).index("smoke") < list(pipeline.order).index("publish")


@pytest.mark.anyio
async def test_ctx_builtin_runs_the_replaced_stage_with_the_runs_context(tmp_path: Path) -> None:
    ctx = project(tmp_path, REPLACING)
    seen: list[tuple[DeliveryContext, StageInputs]] = []

    async def builtin_smoke(run_ctx: DeliveryContext, inputs: StageInputs) -> Outputs:
        seen.append((run_ctx, inputs))
        return {"url": "http://x"}

    definitions = python_definitions(
        ctx, [StageDefinition("smoke", builtin_smoke, needs=("build",))]
    )
    smoke = definitions[0]
    inputs = {"build": {"image.id": "abc"}}

    outputs = await smoke.function(ctx, inputs)

    assert [d.name for d in definitions] == ["smoke", "lint"]
    assert seen == [(ctx, inputs)]
    assert outputs == {"url": "http://x", "wrapped": "yes", "before": "build"}


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ("['a']", "a list, not a dict of strings"),
        ("{'count': 3}", "'count': int 3; values are strings (str('count') ...)"),
        ("{1: 'a'}", "the key 1; keys are non-empty strings"),
        ("'text'", "a str, not a dict of strings"),
    ],
    ids=["list", "int-value", "int-key", "string"],
)
@pytest.mark.anyio
async def test_a_stage_returning_other_than_strings_fails_naming_itself(
    tmp_path: Path, returned: str, problem: str
) -> None:
    pipeline = (
        f"from conveyor.dsl import stage\n\n@stage\nasync def lint(ctx):\n    return {returned}\n"
    )
    ctx = project(tmp_path, pipeline)

    _, result = await deliver(ctx, only=["lint"])

    assert result["lint"].status is Status.FAILED
    assert isinstance(result["lint"].error, StageOutputError)
    assert result["lint"].reason == f"stage 'lint' (ci/pipeline.py:3 lint) returned {problem}"
    assert result["lint"].attempts == 1  # not retried: the same code returns the same thing


@pytest.mark.anyio
async def test_a_secret_read_through_the_context_is_masked_in_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINT_TOKEN", "tok-Very-Secret-7")
    pipeline = (
        "from conveyor.dsl import stage\n\n@stage\nasync def lint(ctx):\n"
        "    token = ctx.secret('LINT_TOKEN')\n"
        "    return {'used': 'with ' + token, 'length': str(len(token))}\n"
    )
    ctx = project(tmp_path, pipeline)

    _, result = await deliver(ctx, only=["lint"])

    assert result["lint"].outputs == {"used": "with ***", "length": "17"}
    assert ctx.redactor("x tok-Very-Secret-7 y") == "x *** y"
    summary = (tmp_path / "artifacts" / "summary.json").read_text()
    assert "tok-Very-Secret-7" not in summary


@pytest.mark.anyio
async def test_a_missing_secret_and_builtin_without_replaces_fail_the_stage_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    pipeline = (
        "from conveyor.dsl import stage\n\n"
        "@stage\nasync def a(ctx):\n    ctx.secret('NOT_SET_ANYWHERE')\n\n"
        "@stage\nasync def b(ctx):\n    await ctx.builtin()\n"
    )
    ctx = project(tmp_path, pipeline)

    _, result = await deliver(ctx, only=["a", "b"])

    assert result["a"].reason == (
        "configuration: NOT_SET_ANYWHERE: secret environment variable is not set"
    )
    assert result["b"].reason == (
        "stage 'b' called ctx.builtin(), but it replaces no built-in stage"
    )


@pytest.mark.parametrize(
    ("pipeline", "extra", "where", "message"),
    [
        (
            "@stage(needs=['nope'])\nasync def lint(ctx): ...\n",
            "",
            "{dir}/ci/pipeline.py:3",
            "lint.needs: 'nope' is not a stage",
        ),
        (
            "@stage(needs=['types'])\nasync def lint(ctx): ...\n",
            TOML_STAGE,
            "{dir}/conveyor.toml",
            "stages: the stages' needs form a cycle: types -> lint (ci/pipeline.py:3) -> types",
        ),
        (
            "@stage\nasync def types(ctx): ...\n",
            TOML_STAGE.replace('needs = ["lint"]', ""),
            "{dir}/conveyor.toml",
            "stages.types: is defined twice (stages.types and ci/pipeline.py:3 types)",
        ),
        (
            "@stage\nasync def lint(ctx): ...\n\n@stage(name='lint')\nasync def again(ctx): ...\n",
            "",
            "{dir}/conveyor.toml",
            "stages.lint: is defined twice (ci/pipeline.py:3 lint and ci/pipeline.py:6 lint)",
        ),
        (
            "@stage\nasync def smoke(ctx): ...\n",
            "",
            "{dir}/ci/pipeline.py:3",
            "@stage smoke: 'smoke' is a built-in stage's name",
        ),
        (
            "@stage\nasync def report(ctx): ...\n",
            "",
            "{dir}/ci/pipeline.py:3",
            "@stage report: 'report' is a built-in stage's name",
        ),
        (
            "@stage(replaces=True)\nasync def lint(ctx): ...\n",
            "",
            "{dir}/ci/pipeline.py:3",
            "@stage lint says replaces=True, but this pipeline has no built-in stage 'lint' "
            "(its built-in stages: build, scan, smoke, publish, manifest, policy)",
        ),
        (
            "@stage(replaces=True)\nasync def test(ctx): ...\n",
            "",
            "{dir}/ci/pipeline.py:3",
            "@stage test says replaces=True, but this pipeline has no built-in stage 'test' "
            "(its built-in stages: build, scan, smoke, publish, manifest, policy)",
        ),
    ],
    ids=[
        "unknown-need",
        "cycle",
        "toml-and-python",
        "python-twice",
        "builtin-name",
        "report",
        "replaces-nothing",
        "replaces-disabled",
    ],
)
def test_a_wrong_graph_is_one_configuration_error(
    tmp_path: Path, pipeline: str, extra: str, where: str, message: str
) -> None:
    ctx = project(tmp_path, "from conveyor.dsl import stage\n\n" + pipeline, extra)

    with pytest.raises(ConfigError) as raised:
        delivery_pipeline(ctx)

    assert str(raised.value).splitlines()[0] == (
        f"{where.replace('{dir}', str(tmp_path))}: {message}"
    )


def test_a_missing_pipeline_file_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "conveyor.toml").write_text(CONFIG, encoding="utf-8")
    config = load_config(tmp_path / "conveyor.toml", env={})

    with pytest.raises(ConfigError) as raised:
        delivery_pipeline(DeliveryContext(config, NoEngine(), SHA, tmp_path / "artifacts"))

    assert raised.value.field == "run.pipeline"
    assert raised.value.problem == (
        f"'ci/pipeline.py' is not a file ({tmp_path / 'ci' / 'pipeline.py'})"
    )


@pytest.mark.parametrize(
    ("call", "image", "tag"),
    [
        ("ctx.run('ruff', ['ruff'])", "ruff", "none, which means latest"),
        ("ctx.run('tools/ruff:latest', ['ruff'])", "tools/ruff:latest", "latest"),
        (
            "ctx.run('a/b:1', ['x'], services=[Service(name='db', image='postgres', port=5432)])",
            "postgres",
            "none, which means latest",
        ),
    ],
    ids=["untagged", "latest", "service"],
)
@pytest.mark.anyio
async def test_ctx_run_refuses_mutable_images_before_the_engine(
    tmp_path: Path, call: str, image: str, tag: str
) -> None:
    pipeline = (
        "from conveyor.dsl import Service, stage\n\n"
        f"@stage\nasync def lint(ctx):\n    await {call}\n"
    )
    ctx = project(tmp_path, pipeline)

    _, result = await deliver(ctx, only=["lint"])

    # refused by the rule, not by the engine (which refuses every operation here)
    assert isinstance(result["lint"].error, PolicyError)
    assert result["lint"].reason == (
        f"image {image!r} refused: stage 'lint' runs it with a mutable tag ({tag})"
    )


@pytest.mark.parametrize(
    "call",
    [
        "ctx.run('tools/ruff@sha256:' + 'a' * 64, ['ruff'])",
        # a service of the image this run built is addressed by its id, not a tag
        "ctx.run('a/b:1', ['x'], services=[Service(name='app', image='f00d', port=8080,"
        " built=BuiltImage(id='f00d', local_ref='f00d'))])",
    ],
    ids=["digest", "built-service"],
)
@pytest.mark.anyio
async def test_ctx_run_takes_pinned_images_to_the_engine(tmp_path: Path, call: str) -> None:
    pipeline = (
        "from conveyor.dsl import Service, stage\n"
        "from conveyor.engines.port import BuiltImage\n\n"
        f"@stage\nasync def lint(ctx):\n    await {call}\n"
    )
    ctx = project(tmp_path, pipeline)

    _, result = await deliver(ctx, only=["lint"])

    assert result["lint"].reason == "engine 'none' cannot run here: run was called while planning"
