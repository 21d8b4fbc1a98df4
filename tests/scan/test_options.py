"""``[stages.scan]`` as conveyor.toml gives it: the container image, its cache and env."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import load_config
from conveyor.errors import ConfigError

MINIMAL = """
[app]
name = "hello"

[registry]
host = "registry.example.com"
repository = "team/hello"
"""


def test_defaults_run_the_local_executable_with_the_trivy_db_cache(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL), env={})
    scan = config.stages.scan
    assert (scan.image, scan.cache, scan.env, scan.trivy) == (None, "trivy-db", {}, "trivy")


def test_a_pinned_image_cache_and_env_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        MINIMAL + "\n[stages.scan]\n"
        'image = "aquasec/trivy:0.69.1"\n'
        'cache = "trivy.db-ci"\n'
        'env = { TRIVY_DB_REPOSITORY = "mirror.example.com/trivy-db" }\n',
    )
    scan = load_config(path, env={}).stages.scan
    assert scan.image == "aquasec/trivy:0.69.1"
    assert scan.cache == "trivy.db-ci"
    assert scan.env == {"TRIVY_DB_REPOSITORY": "mirror.example.com/trivy-db"}


def test_an_image_pinned_by_digest_is_accepted(tmp_path: Path) -> None:
    image = "localhost:5000/trivy@sha256:" + "ab" * 32
    path = _write(tmp_path, MINIMAL + f'\n[stages.scan]\nimage = "{image}"\n')
    assert load_config(path, env={}).stages.scan.image == image


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("aquasec/trivy", "none, which means latest"),
        ("aquasec/trivy:latest", "latest"),
        ("localhost:5000/trivy", "none, which means latest"),
    ],
)
def test_a_mutable_image_tag_is_refused_naming_the_field(
    tmp_path: Path, image: str, tag: str
) -> None:
    path = _write(tmp_path, MINIMAL + f'\n[stages.scan]\nimage = "{image}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(
        f"{path}: stages.scan.image {image!r} uses a mutable tag ({tag}); pin a version"
    )


def test_a_tag_the_policy_calls_mutable_is_refused_too(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        MINIMAL + '\n[stages.scan]\nimage = "aquasec/trivy:stable"\n'
        '\n[policy]\nmutable_tags = ["stable"]\n',
    )
    with pytest.raises(ConfigError, match=r"'aquasec/trivy:stable' uses a mutable tag \(stable\)"):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ('cache = "../db"', "stages.scan.cache", "should match pattern"),
        ('cache = ""', "stages.scan.cache", "should match pattern"),
        ('env = { "NOT A NAME" = "x" }', "stages.scan.env", "'NOT A NAME' is not an environment"),
        ('image = ""', "stages.scan.image", "at least 1"),
    ],
)
def test_a_bad_cache_name_env_or_empty_image_names_the_field(
    tmp_path: Path, line: str, field: str, expected: str
) -> None:
    path = _write(tmp_path, MINIMAL + f"\n[stages.scan]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert text.startswith(f"{path}: {field}: ")
    assert expected in text


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(text)
    return path
