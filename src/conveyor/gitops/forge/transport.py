"""The one HTTP client of the forge adapters, and where httpx errors are translated.

Every request goes through :meth:`ApiClient.request`.  An answer of 400 or
above becomes a :class:`ForgeError` carrying the method, the URL (never the
token: it travels in a header, and the URL is redacted anyway), the status
and the API's own message.  A network failure becomes an
:class:`UnreachableError`; an ``api_url`` httpx cannot use becomes a
:class:`ConfigError`.  :data:`TRANSLATED` lists every httpx request error
class with what it means to a user; a test checks it covers all of httpx's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from conveyor.errors import ConfigError, ForgeError, UnreachableError
from conveyor.secrets import Redactor, Secret

#: Each httpx request error Conveyor catches, with the words a user reads.
TRANSLATED: Mapping[type[httpx.RequestError], str] = {
    httpx.ConnectTimeout: "connecting timed out",
    httpx.ReadTimeout: "no answer within the timeout",
    httpx.WriteTimeout: "sending the request timed out",
    httpx.PoolTimeout: "no free connection within the timeout",
    httpx.ConnectError: "connection failed",
    httpx.ReadError: "reading the answer failed",
    httpx.WriteError: "sending the request failed",
    httpx.CloseError: "closing the connection failed",
    httpx.RemoteProtocolError: "the server broke the HTTP protocol",
    httpx.LocalProtocolError: "the request broke the HTTP protocol",
    httpx.ProxyError: "the proxy refused the connection",
    httpx.UnsupportedProtocol: "the URL's scheme is not http or https",
    httpx.DecodingError: "the answer could not be decoded",
    httpx.TooManyRedirects: "too many redirects",
}

_MAX_DETAIL = 400


class ApiClient:
    """A small JSON-over-HTTPS client bound to one forge API root and token.

    Args:
        forge: The forge's name for messages ("GitHub", "GitLab").
        base_url: The API root, e.g. ``https://api.github.com``.
        token: The API token; sent only in the headers ``auth_headers`` builds.
        headers: Headers sent with every request (besides the token's).
        auth_headers: The token's headers, built from the revealed value.
        timeout: Seconds to wait for connecting and for each read.
        transport: An httpx transport (only tests pass one).
    """

    def __init__(
        self,
        forge: str,
        base_url: str,
        token: Secret,
        *,
        headers: Mapping[str, str],
        auth_headers: Mapping[str, str],
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.forge = forge
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._redact = Redactor([token])
        self._client = httpx.Client(
            headers={**headers, **auth_headers},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: object = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer (``None`` when empty).

        Raises:
            ForgeError: the API answered 400 or above, or not with JSON.
            UnreachableError: the API did not answer.
            ConfigError: the API URL is not one httpx can use.
        """
        url = f"{self.base_url}{path}"
        shown = self._redact(str(httpx.URL(url, params=params)) if _valid(url) else url)
        try:
            response = self._client.request(method, url, params=params, json=json)
        except httpx.InvalidURL as exc:
            raise self._bad_url(shown, str(exc)) from exc
        except httpx.UnsupportedProtocol as exc:
            raise self._bad_url(shown, TRANSLATED[httpx.UnsupportedProtocol]) from exc
        except httpx.RequestError as exc:
            raise UnreachableError(
                f"{self.forge} API",
                shown,
                self._redact(_describe(exc)),
                hint="check the forge api_url, the network and any proxy settings, then retry",
            ) from exc
        if response.status_code >= 400:
            raise ForgeError(
                self.forge, method, shown, response.status_code, self._detail(response)
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ForgeError(
                self.forge,
                method,
                shown,
                response.status_code,
                "the answer is not JSON; is api_url the REST API root?",
            ) from exc

    def _bad_url(self, shown: str, problem: str) -> ConfigError:
        return ConfigError(
            None,
            "gitops.forge.api_url",
            f"{shown!r} cannot be used: {problem}",
            hint="set api_url to the REST API root, e.g. https://api.github.com "
            "or https://gitlab.example.com/api/v4",
        )

    def _detail(self, response: httpx.Response) -> str:
        detail = _api_message(response) or response.reason_phrase or "no message"
        if response.status_code == 401:
            detail += f" (the token in ${self.token.name} is invalid or expired)"
        elif response.status_code == 403:
            detail += (
                f" (the token in ${self.token.name} lacks the scope or permission "
                "for this call, or a rate limit was hit)"
            )
        detail = self._redact(detail)
        if len(detail) > _MAX_DETAIL:
            detail = detail[:_MAX_DETAIL] + " ..."
        return detail


def _valid(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def _describe(exc: httpx.RequestError) -> str:
    for kind in type(exc).__mro__:
        if kind in TRANSLATED:
            words = TRANSLATED[kind]
            return f"{words} ({exc})" if str(exc) else words
    return str(exc) or type(exc).__name__


def _api_message(response: httpx.Response) -> str:
    """The API's own words: GitHub's ``message``/``errors``, GitLab's ``message``/``error``."""
    try:
        document = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if not isinstance(document, dict):
        return str(document)
    parts: list[str] = []
    for key in ("message", "error"):
        if key in document:
            parts.append(_flatten(document[key]))
    for error in document.get("errors", []) or []:
        if isinstance(error, dict):
            text = error.get("message") or " ".join(
                f"{k}={v}" for k, v in error.items() if k in ("resource", "field", "code")
            )
            parts.append(str(text))
        else:
            parts.append(str(error))
    return "; ".join(p for p in parts if p)


def _flatten(value: object) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flatten(v) for v in value)
    return str(value)
