"""Finding, reading and validating the configuration file.

Order of precedence: environment variables ``CONVEYOR_<SECTION>__<KEY>``
(``__`` separates nesting levels, values parsed as TOML scalars when they
can be) over the file.  Every problem becomes a :class:`ConfigError` naming
the file, the dotted field and what was expected.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from conveyor.encoding import utf8_text
from conveyor.errors import ConfigError

PLUGIN_LOADER = "pydantic.plugin._loader"
"""The pydantic module that finds plugins; it imports ``importlib.metadata`` to do so."""


def _no_plugins() -> tuple[()]:
    return ()


@contextmanager
def _without_pydantic_plugins() -> Iterator[None]:
    """Build models as typer builds its own adapters: with pydantic's plugins disabled.

    Looking plugins up scans the entry points of every installed distribution
    (about 13 ms of ``conveyor graph``'s start-up), and no plugin is meant to
    instrument Conveyor's own configuration.  Disabled, pydantic's loader
    finds none, but importing it still costs ``importlib.metadata`` (about
    17 ms more, most of it the ``email`` package); so unless something loaded
    it already, a stand-in whose ``get_plugins`` finds none answers while the
    models are built, and is gone afterwards (a later model imports the real one).
    """
    previous = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    stand_in = None
    if PLUGIN_LOADER not in sys.modules:
        stand_in = ModuleType(PLUGIN_LOADER, "pydantic's plugin loader, plugins disabled")
        stand_in.get_plugins = _no_plugins  # type: ignore[attr-defined]
        sys.modules[PLUGIN_LOADER] = stand_in
    try:
        yield
    finally:
        if stand_in is not None and sys.modules.get(PLUGIN_LOADER) is stand_in:
            del sys.modules[PLUGIN_LOADER]
        if previous is None:
            del os.environ["PYDANTIC_DISABLE_PLUGINS"]
        else:
            os.environ["PYDANTIC_DISABLE_PLUGINS"] = previous


with _without_pydantic_plugins():
    from conveyor.config.models import (
        BUILTIN_STAGES,
        Config,
        CustomStageConfig,
        PolicyConfig,
        StagesConfig,
    )

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
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            path, None, "file does not exist", hint="check the --config path"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            path,
            None,
            "is a directory, not a configuration file",
            hint=f"pass the file: --config {path / 'conveyor.toml'}",
        ) from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = utf8_text(data)
    except ValueError as exc:
        raise ConfigError(
            path, None, str(exc), hint="TOML files are UTF-8: save it with that encoding"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"is not valid TOML: {exc}") from exc


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``data`` with ``CONVEYOR_A__B=value`` set at ``a.b``."""
    return _overrides(data, env)[0]


def _overrides(
    data: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``data`` overridden from ``env``, and which variable set which dotted field.

    Keys are matched against the schema: a section or field name in any case
    (``CONVEYOR_RUN__CAPACITY``), a key of a user mapping (``app.build_args``,
    ``gitops.environments``) as written, or as the key the file already has
    when only the case differs (``..._ENVIRONMENTS__STAGING__PATH`` reaches
    ``[gitops.environments.staging]``).

    Raises:
        ConfigError: a variable names no field, or a field that is not a table;
            the error names the variable.
    """
    result: dict[str, Any] = _deep_copy(data)
    origins: dict[str, str] = {}
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX) or "__" not in variable:
            continue
        keys = _schema_keys(variable, result)
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    None,
                    ".".join(keys[: depth + 1]),
                    "is a value, not a table: the variable cannot set a key inside it",
                    variable=variable,
                )
            node = child
        node[keys[-1]] = _scalar(env[variable])
        origins[".".join(keys)] = variable
    return result, origins


def _schema_keys(variable: str, data: dict[str, Any]) -> list[str]:
    """The keys ``CONVEYOR_A__B__C`` names, spelled as the schema (or the file) spells them."""
    parts = variable[len(ENV_PREFIX) :].split("__")
    keys: list[str] = []
    shape: Any = Config
    node: Any = data
    for part in parts:
        if not part:
            raise ConfigError(
                None, ".".join(keys) or None, "has an empty key ('___')", variable=variable
            )
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            key = part.lower()
            field = shape.model_fields.get(key)
            extra = _extra_type(shape)
            if field is None and extra is not None:  # [stages.<custom>]
                keys.append(key)
                node = node.get(key) if isinstance(node, dict) else None
                shape = extra
                continue
            if field is None or key == "root":
                raise ConfigError(
                    None,
                    ".".join([*keys, key]),
                    "unknown key; check the spelling against the configuration reference",
                    variable=variable,
                )
            shape = _unwrap(field.annotation)
        elif get_origin(shape) is dict:
            existing = node if isinstance(node, dict) else {}
            value = _unwrap(get_args(shape)[1])
            # a new key names a thing (an environment: smoke.staging) when its
            # value is a table, spelled in lower case like the file's names; a
            # key of plain values (build_args, env) keeps the variable's case
            named = isinstance(value, type) and issubclass(value, BaseModel)
            new = part.lower() if named else part
            key = next((k for k in existing if k.lower() == part.lower()), new)
            shape = value
        else:
            raise ConfigError(
                None,
                ".".join(keys),
                "is a value, not a table: the variable cannot set a key inside it",
                variable=variable,
            )
        keys.append(key)
        node = node.get(key) if isinstance(node, dict) else None
    return keys


def _extra_type(model: type[BaseModel]) -> Any:
    """What a model's own keys hold, when it takes any key (``[stages]``'s custom stages)."""
    return CustomStageConfig if model is StagesConfig else None


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None`` and of ``Annotated[X, ...]``: what the TOML value is."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            annotation = options[0] if len(options) == 1 else Any
        else:
            return annotation


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


def _raw(path: Path, env: Mapping[str, str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    raw = _read(path)
    if path.name == "pyproject.toml":
        raw = raw.get("tool", {}).get("conveyor")
        if raw is None:
            raise ConfigError(path, "tool.conveyor", "section is missing")
        if not isinstance(raw, dict):
            raise ConfigError(path, "tool.conveyor", "must be a table ([tool.conveyor])")
    return _overrides(raw, os.environ if env is None else env)


def _validate(
    model: type[M],
    data: Any,
    path: Path,
    prefix: str = "",
    origins: Mapping[str, str] | None = None,
) -> M:
    """``data`` as ``model``; every problem at once in one :class:`ConfigError`.

    A problem in a value that an environment variable set names the variable
    (``origins``: dotted field -> variable), not the file.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            (".".join(p for p in (prefix, _field_name(tuple(e["loc"]))) if p), _problem(e))
            for e in exc.errors()
        ]
        sources = [_origin(field, origins or {}) for field, _ in problems]
        if len(problems) == 1:
            field, problem = problems[0]
            raise ConfigError(path, field or None, problem, variable=sources[0]) from exc
        listed = "".join(
            f"\n  - {field or '(top level)'}: {text}"
            + (f" (from the environment variable {source})" if source else "")
            for (field, text), source in zip(problems, sources, strict=True)
        )
        raise ConfigError(
            path, None, f"{len(problems)} problems:{listed}", hint="fix them all, then run again"
        ) from exc


def _origin(field: str, origins: Mapping[str, str]) -> str | None:
    """The variable that set ``field`` (or a table holding it), if one did."""
    for dotted, variable in origins.items():
        if field == dotted or field.startswith(dotted + ".") or field.startswith(dotted + "["):
            return variable
    return None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate ``path``.

    Raises:
        ConfigError: the file is missing, not TOML, or does not match the schema
            (every problem is listed).
    """
    path = path.resolve()
    data, origins = _raw(path, env)
    data["root"] = path.parent
    return _validate(Config, data, path, origins=origins)


def load_policy(path: Path, env: Mapping[str, str] | None = None) -> PolicyConfig:
    """Only the ``[policy]`` table of ``path`` (defaults when it has none).

    For commands that need nothing else (``conveyor policy check``): the other
    sections are not validated here, and ``load_config`` stays as strict as it is.

    Raises:
        ConfigError: the file is missing or not TOML, or ``[policy]`` is wrong.
    """
    path = path.resolve()
    data, origins = _raw(path, env)
    policy = data.get("policy", {})
    if not isinstance(policy, dict):
        raise ConfigError(path, "policy", "must be a table ([policy])")
    return _validate(PolicyConfig, policy, path, "policy", origins)


def _problem(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    loc = tuple(error.get("loc", ()))
    builtin = len(loc) == 3 and loc[0] == "stages" and loc[1] in BUILTIN_STAGES
    if kind == "extra_forbidden" and builtin and loc[2] in CustomStageConfig.model_fields:
        options = _unwrap(StagesConfig.model_fields[str(loc[1])].annotation)
        known = ", ".join(sorted(options.model_fields))
        return (
            f"unknown key: {loc[1]} is a built-in stage, which takes {known}; "
            "a stage of your own needs a name of its own"
        )
    if kind == "extra_forbidden":
        return "unknown key; check the spelling against the configuration reference"
    if kind == "missing":
        return "is required"
    if kind in {"model_type", "dict_type"}:  # pydantic says "instance of RegistryConfig"
        return f"must be a table (got {_shown(error.get('input'))})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and kind not in {"model_type"} and not isinstance(error["input"], dict):
        return f"{message} (got {error['input']!r})"
    return message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
