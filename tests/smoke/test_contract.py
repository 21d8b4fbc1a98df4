"""Smoke contracts: a service proves its version its own way (real HTTP server)."""

from __future__ import annotations

import json

import pytest

from conveyor.config.models import SmokeStageConfig
from conveyor.errors import SmokeError
from conveyor.smoke.contract import Contract, template_problem
from conveyor.smoke.probe import probe_version

from .conftest import Behaviour, VersionServer, json_body

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SHA = "3f2c1e0b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"


def contract(**keys: object) -> Contract:
    return SmokeStageConfig.model_validate(keys).contract()


async def test_a_nested_json_field_proves_the_version(serve: type[VersionServer]) -> None:
    body = json.dumps({"app": "podinfo", "build": {"commit": SHA, "version": "6.1.0"}})
    server = serve(Behaviour(before=(200, "application/json", body))).start()

    result = await probe_version(
        server.url, SHA, deadline=5, contract=contract(json={"path": "build.commit"})
    )

    assert result.version == SHA
    assert result.attempts == 1


async def test_the_default_refuses_what_the_json_contract_accepts(
    serve: type[VersionServer],
) -> None:
    # The same service without a contract: its "version" is its own, not the SHA.
    body = json_body(version="6.1.0", commit=SHA)
    server = serve(Behaviour(before=(200, "application/json", body))).start()

    with pytest.raises(SmokeError) as caught:
        await probe_version(server.url, SHA, deadline=0.4, interval=0.1)
    accepted = await probe_version(
        server.url, SHA, deadline=5, contract=contract(json={"path": "commit"})
    )

    assert "version is not" in caught.value.last
    assert accepted.version == SHA


async def test_a_json_field_with_another_value_names_path_and_value(
    serve: type[VersionServer],
) -> None:
    server = serve(Behaviour(before=(200, "application/json", json_body(commit="0ld")))).start()

    with pytest.raises(SmokeError) as caught:
        await probe_version(
            server.url,
            SHA,
            deadline=2.0,  # long enough for one answer on a loaded machine
            interval=0.1,
            contract=contract(json={"path": "commit", "equals": "{short_sha}"}),
        )

    assert caught.value.last.startswith(f"HTTP 200, commit is '0ld', expected '{SHA[:7]}'")
    assert f"(any 2xx with JSON commit = '{SHA[:7]}')" in str(caught.value)


async def test_body_contains_a_template(serve: type[VersionServer]) -> None:
    page = f"<html><footer>build hello-{SHA[:7]}</footer></html>"
    server = serve(Behaviour(before=(200, "text/html", page))).start()

    result = await probe_version(
        server.url, SHA, deadline=5, contract=contract(body_contains="hello-{short_sha}")
    )

    assert result.status == 200


async def test_status_only_for_a_service_without_a_version(serve: type[VersionServer]) -> None:
    server = serve(Behaviour(before=(204, "text/plain", ""))).start()

    result = await probe_version(
        server.url, SHA, deadline=5, contract=contract(prove_version=False)
    )

    assert result.version == "(not checked)"
    assert result.status == 204


async def test_an_exact_status_is_required_when_configured(serve: type[VersionServer]) -> None:
    server = serve(
        Behaviour(before=(200, "text/plain", SHA), after=(201, "text/plain", SHA), ready_after=0.3)
    ).start()

    result = await probe_version(
        server.url, SHA, deadline=5, interval=0.1, contract=contract(status=201)
    )

    assert result.status == 201
    assert result.attempts >= 2


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{sha}", None),
        ("v-{short_sha}-x", None),
        ("{nope}", "'{nope}' uses {nope}; the fields are {sha}, {short_sha}"),
        ("{sha", "'{sha' is not a template"),
    ],
)
def test_templates_are_checked_at_load(template: str, problem: str | None) -> None:
    found = template_problem(template)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)
