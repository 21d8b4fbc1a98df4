"""Every boolean and integer of the configuration is strict: ``"yes"`` is not true.

Pydantic's lax mode reads ``insecure = "yes"`` as ``True`` and ``port =
"8080"`` as 8080.  The walk covers the compiled schema of :class:`Config`,
so a new field typed plain ``bool`` or ``int`` fails here, whatever model
it is added to.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, StrictBool

from conveyor.config.models import Config


def scalars(schema: Any, path: str = "", seen: set[int] | None = None) -> Iterator[str]:
    """The place of every ``bool``/``int`` schema under ``schema``, ``(lax)`` when not strict."""
    seen = set() if seen is None else seen
    if isinstance(schema, list):
        for item in schema:
            yield from scalars(item, path, seen)
        return
    if not isinstance(schema, dict) or id(schema) in seen:
        return
    seen.add(id(schema))
    if schema.get("type") in {"bool", "int"}:
        lax = "" if schema.get("strict") else ", lax"
        yield f"{path or '(top)'} ({schema['type']}{lax})"
    if schema.get("type") == "model":
        path = f"{path}:{schema['cls'].__name__}" if path else schema["cls"].__name__
    for key, value in schema.items():
        if key == "fields" and isinstance(value, dict):
            for name, child in value.items():
                yield from scalars(child, f"{path}.{name}", seen)
        elif key not in {"cls", "metadata", "ref", "config"}:
            yield from scalars(value, path, seen)


def test_no_configuration_field_is_a_lax_bool_or_int() -> None:
    found = list(scalars(Config.__pydantic_core_schema__))

    assert [place for place in found if place.endswith(", lax)")] == []
    # the walk reaches nested models and mappings of models
    assert "Config.registry:RegistryConfig.insecure (bool)" in found
    assert any(".environments:EnvironmentConfig.kustomize (bool)" in p for p in found)
    assert len(found) >= 12


def test_the_walk_finds_a_plain_bool_and_int_in_a_nested_model() -> None:
    class Inner(BaseModel):
        flag: bool = False
        strict_flag: StrictBool = False

    class Outer(BaseModel):
        inner: Inner = Inner()
        counts: dict[str, int] = {}

    found = list(scalars(Outer.__pydantic_core_schema__))

    assert found == [
        "Outer.inner:Inner.flag (bool, lax)",
        "Outer.inner:Inner.strict_flag (bool)",
        "Outer.counts (int, lax)",
    ]


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("registry", "insecure", '"yes"'),
        ("registry", "insecure", "1"),
        ("policy", "require_digest", '"no"'),
        ("run", "capacity", '"4"'),
        ("run", "capacity", "4.0"),
    ],
)
def test_strings_and_numbers_are_not_booleans_or_integers(table: str, key: str, value: str) -> None:
    data: dict[str, Any] = {
        "app": {"name": "hello"},
        "registry": {"host": "127.0.0.1:5000", "repository": "hello"},
    }
    data.setdefault(table, {})[key] = tomllib.loads(f"v = {value}")["v"]

    with pytest.raises(ValueError, match=rf"{table}\.{key}\n  Input should be a valid"):
        Config.model_validate(data)
