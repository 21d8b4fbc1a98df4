"""Translation of httpx errors at the forge boundary; every httpx request error is mapped."""

from __future__ import annotations

import inspect
import socket

import httpx
import pytest
from forge_doubles import TOKEN, GitHubApiDouble

from conveyor.errors import ConfigError, ForgeError, UnreachableError
from conveyor.gitops.forge import GitHubForge
from conveyor.gitops.forge.transport import TRANSLATED
from conveyor.secrets import Secret


def _httpx_request_errors() -> set[type[httpx.RequestError]]:
    found = set()
    for name in httpx.__all__:
        value = getattr(httpx, name)
        if inspect.isclass(value) and issubclass(value, httpx.RequestError):
            found.add(value)
    return found


def test_every_concrete_httpx_request_error_is_translated() -> None:
    abstract = {
        httpx.RequestError,
        httpx.TransportError,
        httpx.TimeoutException,
        httpx.NetworkError,
        httpx.ProtocolError,
    }
    assert set(TRANSLATED) == _httpx_request_errors() - abstract


@pytest.mark.parametrize("kind", sorted(TRANSLATED, key=str))
def test_each_translated_error_becomes_a_conveyor_error(kind: type[httpx.RequestError]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise kind(f"boom with {TOKEN}", request=request)

    forge = GitHubForge(
        "acme/manifests",
        Secret("GITHUB_TOKEN", TOKEN),
        api_url="https://forge.invalid",
        transport=httpx.MockTransport(fail),
    )
    expected = ConfigError if kind is httpx.UnsupportedProtocol else UnreachableError
    with pytest.raises(expected) as caught:
        forge.find_open("b", "main")
    assert isinstance(caught.value.__cause__, kind)
    assert TRANSLATED[kind] in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    forge = GitHubForge("acme/manifests", Secret("GITHUB_TOKEN", TOKEN), api_url=url)
    with pytest.raises(UnreachableError) as caught:
        forge.open("b", "main", "t", "b")
    assert caught.value.target == f"{url}/repos/acme/manifests/pulls"
    assert caught.value.detail.startswith("connection failed")
    assert caught.value.hint == (
        "check the forge api_url, the network and any proxy settings, then retry"
    )


def test_an_api_url_without_http_is_a_config_error() -> None:
    forge = GitHubForge("acme/manifests", Secret("GITHUB_TOKEN", TOKEN), api_url="ftp://x")
    with pytest.raises(ConfigError) as caught:
        forge.find_open("b", "main")
    assert caught.value.field == "gitops.forge.api_url"
    assert "the URL's scheme is not http or https" in caught.value.problem


def test_credentials_in_the_api_url_are_masked(github_double: GitHubApiDouble) -> None:
    url = github_double.url.replace("http://", "http://user:hunter22@")
    forge = GitHubForge("acme/manifests", Secret("GITHUB_TOKEN", "wrong-token"), api_url=url)
    with pytest.raises(ForgeError) as caught:
        forge.find_open("b", "main")
    assert "hunter22" not in str(caught.value)
    assert caught.value.url.startswith("http://***@127.0.0.1:")


def test_an_answer_that_is_not_json_is_named() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>sign in</html>")

    forge = GitHubForge(
        "acme/manifests",
        Secret("GITHUB_TOKEN", TOKEN),
        api_url="https://forge.invalid",
        transport=httpx.MockTransport(html),
    )
    with pytest.raises(ForgeError) as caught:
        forge.find_open("b", "main")
    assert caught.value.detail == "the answer is not JSON; is api_url the REST API root?"


def test_an_error_page_that_is_not_json_shows_its_text() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway from proxy")

    forge = GitHubForge(
        "acme/manifests",
        Secret("GITHUB_TOKEN", TOKEN),
        api_url="https://forge.invalid",
        transport=httpx.MockTransport(gateway),
    )
    with pytest.raises(ForgeError) as caught:
        forge.find_open("b", "main")
    assert (caught.value.status, caught.value.detail) == (502, "Bad Gateway from proxy")
