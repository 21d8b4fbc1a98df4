"""Values that would reach a command line as options are refused when the file loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.errors import ConfigError

BASE = {
    "registry.host": "myacr.azurecr.io",
    "stages.test.image": "myacr.azurecr.io/python:3.12",
    "gitops.repo": "https://example.com/manifests.git",
    "gitops.branch": "main",
}


def write(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(
        '[app]\nname = "hello"\n\n'
        f'[registry]\nhost = "{values["registry.host"]}"\nrepository = "hello"\n\n'
        f'[stages.test]\nimage = "{values["stages.test.image"]}"\ncommand = ["true"]\n\n'
        f'[gitops]\nrepo = "{values["gitops.repo"]}"\nbranch = "{values["gitops.branch"]}"\n\n'
        '[gitops.environments.staging]\npath = "apps/hello"\n'
    )
    return path


def test_ordinary_values_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE), env={})
    assert config.gitops is not None
    assert config.gitops.branch == "main"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gitops.repo", "--upload-pack=touch /tmp/pwned"),
        ("gitops.branch", "--delete"),
        ("stages.test.image", "--privileged"),
        ("registry.host", "-v"),
    ],
)
def test_a_value_starting_with_a_dash_is_refused_naming_the_field(
    tmp_path: Path, field: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, {**BASE, field: value}), env={})
    message = str(caught.value)
    assert f"- {field}: " in message or f": {field}: " in message, message
    assert repr(value) in message
    assert str(tmp_path / "conveyor.toml") in message
