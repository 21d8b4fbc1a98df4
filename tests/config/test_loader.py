from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic.plugin._loader import get_plugins

from conveyor.config import find_config, load_config, load_policy
from conveyor.config.duration import parse_duration
from conveyor.errors import ConfigError

MINIMAL = """
[app]
name = "hello"

[registry]
host = "registry.example.com"
repository = "team/hello"
"""


def write(tmp_path: Path, text: str, name: str = "conveyor.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), env={})
    assert config.registry.image == "registry.example.com/team/hello"
    assert config.stages.scan.fail_on == ["HIGH", "CRITICAL"]
    assert config.policy.mutable_tags == ["latest"]
    assert config.run.capacity == 4
    assert config.root == tmp_path.resolve()


def test_models_are_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), env={})
    with pytest.raises(ValueError, match="frozen"):
        config.app.name = "other"  # type: ignore[misc]


def test_malformed_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[app\nname = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(f"{path}: is not valid TOML: ")
    assert "line 1" in str(info.value)


def test_unknown_key_names_file_and_dotted_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[stages.scan]\nfail_onn = ['HIGH']\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == (
        f"{path}: stages.scan.fail_onn: unknown key; check the spelling against the "
        "configuration reference"
    )


def test_wrong_type_says_what_was_expected_and_what_was_given(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[run]\ncapacity = 'many'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == (
        f"{path}: run.capacity: Input should be a valid integer (got 'many')"
    )


def test_missing_section_is_required(tmp_path: Path) -> None:
    path = write(tmp_path, "[app]\nname = 'hello'\n")
    with pytest.raises(ConfigError, match=r"conveyor.toml: registry: is required"):
        load_config(path, env={})


def test_bad_severity_lists_the_accepted_ones(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[stages.scan]\nfail_on = ['SEVERE']\n")
    with pytest.raises(ConfigError, match=r"stages.scan.fail_on\[0\]: Input should be 'UNKNOWN'"):
        load_config(path, env={})


def test_bad_duration_shows_accepted_forms(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[stages.smoke]\ndeadline = 'soon'\n")
    with pytest.raises(ConfigError, match=r"stages.smoke.deadline: 'soon' is not a duration"):
        load_config(path, env={})


def test_manifest_environment_must_be_defined(tmp_path: Path) -> None:
    text = MINIMAL + "\n[gitops]\nrepo = 'x.git'\n[gitops.environments.prod]\npath = 'p'\n"
    with pytest.raises(ConfigError, match=r"'staging' is not one of gitops\.environments \(prod\)"):
        load_config(write(tmp_path, text), env={})


def test_environment_overrides_nested_values_with_toml_scalars(tmp_path: Path) -> None:
    env = {
        "CONVEYOR_REGISTRY__HOST": "127.0.0.1:5000",
        "CONVEYOR_REGISTRY__INSECURE": "true",
        "CONVEYOR_RUN__CAPACITY": "2",
        "UNRELATED": "x",
    }
    config = load_config(write(tmp_path, MINIMAL), env=env)
    assert config.registry.host == "127.0.0.1:5000"
    assert config.registry.insecure is True
    assert config.run.capacity == 2


def test_environment_override_with_unknown_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"registry\.hots: unknown key"):
        load_config(write(tmp_path, MINIMAL), env={"CONVEYOR_REGISTRY__HOTS": "x"})


def test_pyproject_tool_section_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    text = MINIMAL.replace("[app]", "[tool.conveyor.app]").replace(
        "[registry]", "[tool.conveyor.registry]"
    )
    write(tmp_path, "[project]\nname = 'x'\n" + text, "pyproject.toml")
    nested = tmp_path / "src" / "pkg"
    nested.mkdir(parents=True)
    found = find_config(nested)
    assert found == tmp_path / "pyproject.toml"
    assert load_config(found, env={}).app.name == "hello"


def test_no_config_anywhere_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run 'conveyor init' or pass --config PATH"):
        find_config(tmp_path)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: file does not exist"):
        load_config(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), (1.5, 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "-1", 0, True, "1d"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("image", ["python", "python:latest", "localhost:5000/python"])
def test_a_mutable_test_image_is_refused(tmp_path: Path, image: str) -> None:
    text = MINIMAL + f"\n[stages.test]\nimage = '{image}'\ncommand = ['pytest']\n"
    with pytest.raises(ConfigError, match=r"uses a mutable tag .*pin a version or a digest"):
        load_config(write(tmp_path, text), env={})


def test_a_tag_in_the_registry_repository_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace('repository = "team/hello"', 'repository = "hello:latest"')
    with pytest.raises(ConfigError, match=r"registry.repository: String should match pattern"):
        load_config(write(tmp_path, text), env={})


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "[app]\nname = 'Bad Name'\n[stages.scan]\nfail_on = ['SEVERE']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    text = str(caught.value)
    assert text.startswith(f"{path}: 3 problems:\n")
    assert "  - app.name: String should match pattern" in text
    assert "  - registry: is required" in text
    assert "  - stages.scan.fail_on[0]: Input should be" in text
    assert "more problem" not in text


def test_load_policy_needs_only_the_policy_table(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[policy]\nallowed_registries = ['^a\\.io/.+$']\nrequire_digest = false\n"
    )
    policy = load_policy(path, env={})
    assert policy.allowed_registries == ["^a\\.io/.+$"]
    assert policy.require_digest is False
    # a file without [policy] gets the defaults; run's loader still wants [app] and [registry]
    empty = write(tmp_path, "", name="empty.toml")
    assert load_policy(empty, env={}).mutable_tags == ["latest"]
    with pytest.raises(ConfigError, match="2 problems"):
        load_config(empty, env={})
    bad = write(tmp_path, "[policy]\nrequire_digest = 'maybe'\nextra = 1\n", name="bad.toml")
    with pytest.raises(ConfigError) as caught:
        load_policy(bad, env={})
    assert "  - policy.require_digest: Input should be a valid boolean" in str(caught.value)
    assert "  - policy.extra: unknown key" in str(caught.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("json = { path = 'build.commit' }\nbody_contains = '{sha}'", "set body_contains or json"),
        ("body_contains = 'v{version}'", "uses {version}; the fields are {sha}, {short_sha}"),
        ("prove_version = false\njson = { path = 'v' }", "prove_version = false checks the status"),
        ("status = 42", "stages.smoke.status"),
    ],
)
def test_a_smoke_contract_that_cannot_work_is_refused_at_load(
    tmp_path: Path, table: str, message: str
) -> None:
    path = write(tmp_path, MINIMAL + f"\n[stages.smoke]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert message in str(caught.value)


def test_a_smoke_contract_is_read_for_the_stage_and_every_environment(tmp_path: Path) -> None:
    text = MINIMAL + (
        "\n[stages.smoke]\nport = 9898\njson = { path = 'commit' }\n"
        "\n[smoke.staging]\nurl = 'https://hello.staging.example.com/'\nprove_version = false\n"
    )
    config = load_config(write(tmp_path, text), env={})
    assert config.stages.smoke.contract().json_path == ("commit",)
    assert config.stages.smoke.contract().json_equals == "{sha}"
    assert config.smoke["staging"].contract().prove_version is False


def test_the_models_are_built_without_pydantic_plugins_or_their_loader() -> None:
    # a fresh interpreter: what importing the configuration loaded, then a model of one's own
    code = (
        "import json, os, sys\n"
        "import conveyor.config\n"
        "loaded = [m in sys.modules for m in ('importlib.metadata', 'pydantic.plugin._loader')]\n"
        "from pydantic import BaseModel\n"
        "class Later(BaseModel):\n"
        "    x: int\n"
        "from pydantic.plugin import _loader\n"
        "print(json.dumps([*loaded, 'PYDANTIC_DISABLE_PLUGINS' in os.environ,\n"
        "                  hasattr(_loader, 'entry_points'), Later(x=1).x]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )

    # neither the loader nor importlib.metadata was imported, the variable is restored,
    # and a later model gets pydantic's own loader
    assert json.loads(done.stdout) == [False, False, False, True, 1]


def test_pydantic_finds_no_plugin_when_they_are_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    # what the loader's stand-in answers while the models are built
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "__all__")
    assert list(get_plugins()) == []
