"""Random bytes and random TOML as conveyor.toml never give a traceback.

``conveyor graph`` and ``conveyor plan`` load the file; for any content
they either work (exit 0) or print one configuration error (exit 3).  The
commands run in-process through :func:`conveyor.cli.app.invoke`, the
function the console script calls, so that a hundred examples take seconds
(``test_bad_input`` runs the console script itself).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.cli.app import invoke

VALID = """\
[app]
name = "hello"
build_args = { BASE = "x" }

[registry]
host = "127.0.0.1:5000"
repository = "team/hello"

[stages.test]
image = "python:3.12-slim"
command = ["pytest"]

[gitops]
repo = "https://git.example.com/manifests.git"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"

[smoke.staging]
url = "http://127.0.0.1:1/version"
"""
BASE: dict[str, Any] = tomllib.loads(VALID)
KEYS = sorted(
    {
        *("app", "registry", "stages", "gitops", "smoke", "policy", "run", "root"),
        *("name", "host", "repository", "insecure", "timeout", "retries", "enabled", "port"),
        *("deadline", "path", "message", "environments", "staging", "production", "promotion"),
        *("capacity", "on_failure", "test", "build", "scan", "publish", "manifest", "image"),
        *("command", "fail_on", "ignore", "expires", "allowed_registries", "flux_setters"),
        *("helm_values", "kustomize", "forge", "kind", "project", "build_args", "url", "env"),
    }
)
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=30),
    st.sampled_from(["5m", "inf", "nan", "1h30m", "latest", "deploy {nope}", "{app}", "yes"]),
    st.dates(),
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), st.text(min_size=1, max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=12,
)


def toml_value(value: Any) -> str:  # noqa: PLR0911 - one return per TOML type
    """``value`` as a TOML value (nested tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items()
            )
            + "}"
        )
    return value.isoformat()  # a date


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def toml_document(data: dict[str, Any]) -> bytes:
    return "".join(
        f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n" for k, v in data.items()
    ).encode()


SECTIONS = ("app", "registry", "stages", "gitops", "smoke", "policy", "run")
# mostly changes inside the real sections (a wrong type, a bad value, a nested table), so
# that validation, not only the unknown-key check, sees them
changes = st.dictionaries(
    st.one_of(st.sampled_from(SECTIONS), keys),
    st.one_of(values, st.dictionaries(keys, values, max_size=4)),
    max_size=3,
)
random_documents = st.builds(lambda change: toml_document(merged(BASE, change)), changes)
random_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda at, junk: VALID.encode()[:at] + junk + VALID.encode()[at:],
        st.integers(0, len(VALID)),
        st.binary(min_size=1, max_size=8),
    ),
)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One conveyor.toml the examples overwrite; the source SHA given (no git needed)."""
    path = tmp_path_factory.mktemp("fuzz") / "conveyor.toml"
    saved = os.environ.get("CONVEYOR_SOURCE_SHA")
    os.environ["CONVEYOR_SOURCE_SHA"] = "a" * 40
    yield path
    if saved is None:
        del os.environ["CONVEYOR_SOURCE_SHA"]
    else:
        os.environ["CONVEYOR_SOURCE_SHA"] = saved


def load_outcomes(path: Path, content: bytes) -> list[tuple[int, str]]:
    """``graph`` and ``plan`` on ``content``: (exit code, stderr) each; exceptions escape."""
    path.write_bytes(content)
    outcomes = []
    for command in ("graph", "plan"):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = invoke([command, "--config", str(path)])
        outcomes.append((code, err.getvalue()))
    return outcomes


def assert_clean(outcomes: list[tuple[int, str]], path: Path) -> None:
    for code, stderr in outcomes:
        assert code in {0, 3}, stderr
        if code == 3:
            assert stderr.startswith(f"error: {path.resolve()}: "), stderr
        assert "Traceback" not in stderr


@SETTINGS
@given(content=random_bytes)
def test_random_bytes_are_a_configuration_error_never_a_crash(
    config_file: Path, content: bytes
) -> None:
    assert_clean(load_outcomes(config_file, content), config_file)


@SETTINGS
@given(content=random_documents)
def test_random_toml_is_a_configuration_error_never_a_crash(
    config_file: Path, content: bytes
) -> None:
    assert_clean(load_outcomes(config_file, content), config_file)


def test_the_valid_document_loads(config_file: Path) -> None:
    # the base the random documents change must itself be accepted, or they test nothing
    assert load_outcomes(config_file, toml_document(BASE)) == [(0, ""), (0, "")]
