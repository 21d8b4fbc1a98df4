"""The Dagger module as the engine registers it, checked without an engine.

The module is loaded the way dagger-io's own tests do (the ``Module`` its
decorators built); its registration query is then sent to the Dagger API
double, which validates it against the v0.21.8 schema.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagger
import graphql
import pytest
from conveyor_pipelines import Conveyor
from conveyor_pipelines.main import IGNORE, UNPUBLISHED_SHA
from dagger_query import DaggerApiDouble

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ARGS = ("source", "config")
CREDENTIALS = ("registry_username", "registry_password")

# function -> (arguments in order, return type, cache policy)
EXPECTED: dict[str, tuple[tuple[str, ...], type, str | None]] = {
    "test": (("source", "config"), dagger.Directory, None),
    "build": (("source", "sha", "config"), dagger.Container, None),
    "scan": (("source", "sha", "config"), dagger.Directory, None),
    "smoke": (("source", "sha", "config"), str, None),
    "publish": (("source", "sha", "config", *CREDENTIALS), str, "never"),
    "manifest": (
        ("source", "sha", "config", "environment", *CREDENTIALS, "git_token"),
        str,
        "never",
    ),
    "ci": (
        ("source", "sha", "config", "environment", *CREDENTIALS, "git_token", "strict", "validate"),
        dagger.Directory,
        "never",
    ),
    "stage": (
        ("source", "name", "sha", "config", "environment", *CREDENTIALS, "git_token"),
        str,
        "never",
    ),
    "promote": (("source", "to", "from_", "config", "git_token", "forge_token"), str, "never"),
}


def functions() -> dict[str, Any]:
    module = Conveyor.__dagger_module__  # type: ignore[attr-defined]
    return dict(module.get_object("Conveyor").functions)


def test_dagger_json_points_at_the_module_and_includes_the_core() -> None:
    config = json.loads((ROOT / "dagger.json").read_text(encoding="utf-8"))

    assert config["name"] == "conveyor"
    assert config["engineVersion"] == "v0.21.8"
    assert config["sdk"] == {"source": "python"}
    assert config["source"] == "pipelines"
    assert "src/conveyor/**" in config["include"]
    assert "pyproject.toml" in config["include"]
    assert (ROOT / config["source"] / "src" / "conveyor_pipelines" / "main.py").is_file()


def test_the_module_package_is_not_named_like_the_core() -> None:
    text = (ROOT / "pipelines" / "pyproject.toml").read_text(encoding="utf-8")

    assert 'main_object = "conveyor_pipelines:Conveyor"' in text
    assert 'conveyor-gitops = { path = "..", editable = true }' in text
    assert not (ROOT / "pipelines" / "src" / "conveyor").exists()


def test_runtime_base_image_has_git_and_the_same_python_as_the_default() -> None:
    # The Python SDK reads [tool.dagger] base-image (its runtime's UserConfig,
    # toml:"base-image"); without it the runtime is python:<requires-python>-slim,
    # which has no git for the manifest, ci and promote functions.
    project = tomllib.loads((ROOT / "pipelines" / "pyproject.toml").read_text(encoding="utf-8"))
    image = project["tool"]["dagger"]["base-image"]
    minimum = project["project"]["requires-python"].removeprefix(">=")

    name, _, digest = image.partition("@")
    assert name == "python:3.11-bookworm"  # built on buildpack-deps:bookworm (git included)
    assert name == f"python:{minimum}-bookworm"
    assert "slim" not in name
    # Pinned by digest: the engine caches the runtime per module source.
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image


CORE = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]


def _lock() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pipelines" / "uv.lock").read_text(encoding="utf-8"))


def _lock_package(name: str) -> dict[str, Any]:
    packages = [p for p in _lock()["package"] if p["name"] == name]
    assert len(packages) == 1, f"uv.lock holds {len(packages)} packages named {name}"
    return packages[0]


def test_the_module_lock_pins_the_sdk_and_the_core_by_path() -> None:
    # The runtime installs with `uv lock` + `uv sync --no-dev` when uv.lock
    # exists: the SDK it vendors under sdk/ and the core package at the root
    # must be the path sources the lock names, not releases from an index.
    lock = _lock()
    assert _lock_package("dagger-io")["source"] == {"editable": "sdk"}
    assert _lock_package(CORE)["source"] == {"editable": "../"}
    engine = json.loads((ROOT / "dagger.json").read_text(encoding="utf-8"))["engineVersion"]
    assert _lock_package("dagger-io")["version"] == engine.removeprefix("v")
    pinned = [p for p in lock["package"] if "registry" in p.get("source", {})]
    assert pinned, "the lock pins no dependency from the index"
    assert all(p.get("version") for p in pinned)


def test_the_module_lock_matches_the_core_dependencies() -> None:
    # Adding a dependency to the core without relocking would leave the
    # module resolving it live on every load: run scripts/lock-pipelines.sh.
    core = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    recorded = _lock_package(CORE)["metadata"]["requires-dist"]
    recorded_plain = {
        (entry["name"], entry.get("specifier", "")) for entry in recorded if "marker" not in entry
    }
    declared = set()
    for requirement in core["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+?)\s*([<>=!~].*)?", requirement)
        assert match, requirement
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        declared.add((name, (match.group(2) or "").replace(" ", "")))
    assert recorded_plain == declared, "pipelines/uv.lock is stale: run scripts/lock-pipelines.sh"


def test_one_function_per_stage_plus_ci_stage_and_promote() -> None:
    assert set(functions()) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_function_arguments_types_and_cache_policy(name: str) -> None:
    function = functions()[name]
    arguments, returns, cache = EXPECTED[name]

    assert tuple(function.parameters) == arguments
    assert function.return_type is returns
    assert function.cache_policy == cache
    assert function.doc
    for parameter in function.parameters.values():
        assert parameter.doc, f"{name}({parameter.name}) has no Doc"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_source_defaults_to_the_repository_without_local_clutter(name: str) -> None:
    source = functions()[name].parameters["source"]

    assert source.resolved_type is dagger.Directory
    assert source.default_path == "/"
    assert source.ignore == IGNORE
    assert ".git" in source.ignore
    assert ".venv" in source.ignore


@pytest.mark.parametrize("name", ["publish", "manifest", "ci", "stage"])
def test_push_like_functions_take_secrets_as_dagger_secrets_and_a_required_sha(name: str) -> None:
    parameters = functions()[name].parameters

    assert parameters["sha"].default_value is None
    assert not parameters["sha"].is_nullable
    assert parameters["registry_password"].resolved_type == dagger.Secret | None
    assert parameters["registry_password"].is_nullable
    if "git_token" in parameters:
        assert parameters["git_token"].resolved_type == dagger.Secret | None


@pytest.mark.parametrize("name", ["build", "scan", "smoke"])
def test_read_only_functions_need_no_sha(name: str) -> None:
    sha = functions()[name].parameters["sha"]

    assert json.loads(sha.default_value) == UNPUBLISHED_SHA


def test_promote_takes_environments_and_tokens_as_dagger_secrets() -> None:
    parameters = functions()["promote"].parameters

    assert parameters["to"].default_value is None
    assert not parameters["to"].is_nullable
    assert parameters["from_"].name == "from"  # the API name, as `dagger call promote --from`
    assert json.loads(parameters["from_"].default_value) == "staging"
    for token in ("git_token", "forge_token"):
        assert parameters[token].resolved_type == dagger.Secret | None
        assert parameters[token].is_nullable


def test_ci_validate_is_a_list_of_strings_empty_by_default() -> None:
    validate = functions()["ci"].parameters["validate"]

    # dagger call ci --validate=gates: a [String!]! argument, [] being no validation run
    assert validate.resolved_type == Sequence[str]
    assert json.loads(validate.default_value) == []
    assert not validate.is_nullable


def test_config_defaults_to_conveyor_toml() -> None:
    for function in functions().values():
        assert json.loads(function.parameters["config"].default_value) == "conveyor.toml"


@pytest.mark.anyio
async def test_registration_fits_the_dagger_schema() -> None:
    double = DaggerApiDouble()

    await double.register(Conveyor)

    described = [c for c in double.calls("withObject") if c.get("name") == "Conveyor"]
    assert {
        "name": "Conveyor",
        "description": "Conveyor's delivery pipeline as Dagger functions.",
    } in described
    assert "Conveyor: a GitOps delivery pipeline" in double.documents[-1]
    assert "promote`` moves" in double.documents[-1]
    registered = {call["name"] for call in double.calls("function")} - {""}  # "": constructor
    assert registered == set(EXPECTED)
    never = double.calls("withCachePolicy")
    assert len(never) == 5
    assert all(c["policy"] == "Never" for c in never)
    sources = [c for c in double.calls("withArg") if c["name"] == "source"]
    assert len(sources) == len(EXPECTED)
    assert all(c["defaultPath"] == "/" and c["ignore"] == IGNORE for c in sources)


@pytest.mark.anyio
async def test_ci_validate_registers_its_default_and_description() -> None:
    double = DaggerApiDouble()
    await double.register(Conveyor)

    (arg,) = [c for c in double.calls("withArg") if c["name"] == "validate"]
    assert arg["defaultValue"] == "[]"
    assert "conveyor run --validate" in arg["description"]


# What `dagger functions` / `dagger call FUNCTION --help` show: the API names of
# the arguments in order (the CLI spells them in kebab case: --git-token), and
# the first line of each function's description.
REGISTERED: dict[str, tuple[tuple[str, ...], str]] = {
    "test": (("source", "config"), "Run the unit tests in the test image"),
    "build": (("source", "sha", "config"), "Build the application image from its Dockerfile"),
    "scan": (("source", "sha", "config"), "Build the image and scan it with Trivy"),
    "smoke": (("source", "sha", "config"), "Build the image, run it as a service and probe it"),
    "publish": (
        ("source", "sha", "config", *CREDENTIALS),
        "Test, build, scan and smoke, then push registry/repository:<sha> once.",
    ),
    "manifest": (
        ("source", "sha", "config", "environment", *CREDENTIALS, "git_token"),
        "Publish, pin the digest in the environment's kustomization, commit and push it.",
    ),
    "ci": (
        ("source", "sha", "config", "environment", *CREDENTIALS, "git_token", "strict", "validate"),
        "Run the whole delivery DAG; returns the reports: summary.json, test/, scan/.",
    ),
    "stage": (
        ("source", "name", "sha", "config", "environment", *CREDENTIALS, "git_token"),
        "Run one stage of the DAG and every stage it needs; returns its outputs (key=value).",
    ),
    "promote": (
        ("source", "to", "from", "config", "git_token", "forge_token"),
        "Propose the exact image one environment runs for another.",
    ),
}


def registration(double: DaggerApiDouble, name: str) -> graphql.FieldNode:
    """The ``function(name: ...)`` field that registers ``name``."""
    for text in double.documents:
        for definition in graphql.parse(text).definitions:
            assert isinstance(definition, graphql.OperationDefinitionNode)
            for node in definition.selection_set.selections:
                assert isinstance(node, graphql.FieldNode)
                args = {a.name.value: a.value for a in node.arguments or ()}
                value = args.get("name")
                if (
                    node.name.value == "function"
                    and isinstance(value, graphql.StringValueNode)
                    and value.value == name
                ):
                    return node
    raise AssertionError(f"function {name!r} was not registered")


def chained(node: graphql.FieldNode) -> list[tuple[str, dict[str, Any]]]:
    """The calls chained on a registration field, outermost first, with their arguments."""
    calls = []
    current: graphql.FieldNode | None = node
    while current is not None and current.selection_set is not None:
        child = current.selection_set.selections[0]
        assert isinstance(child, graphql.FieldNode)
        arguments = {
            a.name.value: graphql.value_from_ast_untyped(a.value) for a in child.arguments or ()
        }
        calls.append((child.name.value, arguments))
        current = child
    return calls


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(REGISTERED))
async def test_each_function_registers_its_arguments_doc_and_cache_policy(name: str) -> None:
    double = DaggerApiDouble()
    await double.register(Conveyor)

    calls = chained(registration(double, name))
    arguments, first_line = REGISTERED[name]

    assert [args["name"] for call, args in calls if call == "withArg"] == list(arguments)
    assert all(args["description"] for call, args in calls if call == "withArg")
    descriptions = [args["description"] for call, args in calls if call == "withDescription"]
    assert len(descriptions) == 1
    assert descriptions[0].splitlines()[0].startswith(first_line)
    policies = [args["policy"] for call, args in calls if call == "withCachePolicy"]
    assert policies == (["Never"] if EXPECTED[name][2] == "never" else [])


def test_docs_list_every_function_with_its_cli_arguments_and_cache_policy() -> None:
    text = (ROOT / "docs" / "dagger.md").read_text(encoding="utf-8")
    rows = {
        cells[0].strip("` "): cells
        for line in text.splitlines()
        if line.startswith("| `")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }

    assert set(rows) == set(REGISTERED)
    for name, (arguments, _) in REGISTERED.items():
        flags = rows[name][1].strip("`").split()
        assert flags == [f"--{a.replace('_', '-')}" for a in arguments], name
        assert rows[name][3] == ("never" if EXPECTED[name][2] == "never" else "default"), name
