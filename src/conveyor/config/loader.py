"""Finding, reading and validating the configuration file.

Order of precedence: environment variables ``CONVEYOR_<SECTION>__<KEY>``
(``__`` separates nesting levels, values parsed as TOML scalars when they
can be) over the file.  Every problem becomes a :class:`ConfigError` naming
the file, the dotted field and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from conveyor.config.models import Config, PolicyConfig
from conveyor.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

ENV_PREFIX = "CONVEYOR_"
FILE_NAMES = ("conveyor.toml", "pyproject.toml")


def find_config(start: Path) -> Path:
    """The nearest ``conveyor.toml`` (or ``[tool.conveyor]`` in pyproject) at or above ``start``."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / "conveyor.toml"
        if candidate.is_file():
            return candidate
        pyproject = directory / "pyproject.toml"
        if (
            pyproject.is_file()
            and "tool" in _read(pyproject)
            and "conveyor" in _read(pyproject)["tool"]
        ):
            return pyproject
    raise ConfigError(
        start,
        None,
        "no conveyor.toml (or [tool.conveyor] in pyproject.toml) here or in any parent directory",
        hint="run 'conveyor init' or pass --config PATH",
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            path, None, "file does not exist", hint="check the --config path"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"is not valid TOML: {exc}") from exc


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``data`` with ``CONVEYOR_A__B=value`` set at ``a.b``."""
    result: dict[str, Any] = _deep_copy(data)
    for key in sorted(env):
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__")]
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    None, ".".join(parts), f"{key} overrides a value that is not a table"
                )
            node = child
        node[parts[-1]] = _scalar(env[key])
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _field_name(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-after", "function-before"} or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _raw(path: Path, env: Mapping[str, str] | None) -> dict[str, Any]:
    raw = _read(path)
    if path.name == "pyproject.toml":
        raw = raw.get("tool", {}).get("conveyor")
        if raw is None:
            raise ConfigError(path, "tool.conveyor", "section is missing")
    return apply_env_overrides(raw, os.environ if env is None else env)


def _validate(model: type[M], data: Any, path: Path, prefix: str = "") -> M:
    """``data`` as ``model``; every problem at once in one :class:`ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            (".".join(p for p in (prefix, _field_name(tuple(e["loc"]))) if p), _problem(e))
            for e in exc.errors()
        ]
        if len(problems) == 1:
            field, problem = problems[0]
            raise ConfigError(path, field or None, problem) from exc
        listed = "".join(f"\n  - {field or '(top level)'}: {text}" for field, text in problems)
        raise ConfigError(
            path, None, f"{len(problems)} problems:{listed}", hint="fix them all, then run again"
        ) from exc


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate ``path``.

    Raises:
        ConfigError: the file is missing, not TOML, or does not match the schema
            (every problem is listed).
    """
    path = path.resolve()
    data = _raw(path, env)
    data["root"] = path.parent
    return _validate(Config, data, path)


def load_policy(path: Path, env: Mapping[str, str] | None = None) -> PolicyConfig:
    """Only the ``[policy]`` table of ``path`` (defaults when it has none).

    For commands that need nothing else (``conveyor policy check``): the other
    sections are not validated here, and ``load_config`` stays as strict as it is.

    Raises:
        ConfigError: the file is missing or not TOML, or ``[policy]`` is wrong.
    """
    path = path.resolve()
    data = _raw(path, env)
    policy = data.get("policy", {})
    if not isinstance(policy, dict):
        raise ConfigError(path, "policy", "must be a table ([policy])")
    return _validate(PolicyConfig, policy, path, "policy")


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key; check the spelling against the configuration reference"
    if kind == "missing":
        return "is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind not in {"model_type"} and not isinstance(error["input"], dict):
        return f"{message} (got {error['input']!r})"
    return message
