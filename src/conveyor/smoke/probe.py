"""Poll a URL until it serves the expected version, with backoff and a deadline.

Used twice in a run: against the freshly built image run as a service before
publishing, and against an environment's URL after the manifest commit, where
Flux or Argo CD roll the new version out in their own time.  Connection errors,
timeouts and non-2xx answers are all "not yet": the probe retries until the
deadline and only then raises :class:`~conveyor.errors.SmokeError` with the
last answer it saw.

What counts as serving the version is a :class:`~conveyor.smoke.contract.Contract`
(``[stages.smoke]`` status / body_contains / json / prove_version); by default a
2xx response whose body is a JSON object with a ``version`` field equal to or
containing ``expected``, or any other body containing it.  With
``consecutive`` above 1 (the smoke stage's ``passes``, 3 by default) that
many answers in a row must show it: a service that crashes right after its
first answer does not pass.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import anyio
import httpx

from conveyor.errors import ConfigError, SmokeError
from conveyor.secrets import Redactor
from conveyor.smoke.contract import DEFAULT, Contract

SNIPPET = 120


@dataclass(frozen=True)
class ProbeResult:
    """A probe that saw the expected version.

    Attributes:
        url: The URL probed (credentials masked).
        version: What the service reported (the JSON ``version`` or the body).
        status: The HTTP status of the matching answer.
        attempts: How many requests were made.
        elapsed: Seconds from the first request to the match.
    """

    url: str
    version: str
    status: int
    attempts: int
    elapsed: float


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 3] + "..."


def _check(expected: str, *, deadline: float, interval: float, consecutive: int) -> None:
    if not expected.strip():
        raise ConfigError(None, "expected version", "must not be empty")
    for name, value in (("deadline", deadline), ("interval", interval)):
        if value <= 0:
            raise ConfigError(None, name, f"must be positive, got {value}")
    if consecutive < 1:
        raise ConfigError(None, "consecutive", f"must be at least 1, got {consecutive}")


async def probe_version(
    url: str,
    expected: str,
    *,
    deadline: float,
    contract: Contract = DEFAULT,
    interval: float = 0.5,
    backoff: float = 1.5,
    max_interval: float = 10,
    request_timeout: float = 10,
    consecutive: int = 1,
    verify: ssl.SSLContext | str | bool = True,
    client: httpx.AsyncClient | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> ProbeResult:
    """GET ``url`` until it serves ``expected`` or ``deadline`` seconds have passed.

    Args:
        url: The version endpoint, e.g. ``https://hello.staging.example.com/version``.
        expected: The version to wait for (usually the image tag, the git SHA).
        deadline: Seconds to keep trying, counted from the call.
        contract: Which answer proves the version (default: the ``version``
            field or the body contains ``expected``).
        interval: Seconds to wait after the first failed attempt.
        backoff: Factor the wait grows by after each failed attempt.
        max_interval: Longest wait between attempts.
        request_timeout: Longest a single request may take.
        consecutive: Good answers needed in a row (a service that crashes right
            after its first answer must not pass); they are ``interval`` apart.
        verify: TLS verification for httpx (a CA bundle path for private CAs).
        client: An httpx client to use instead of a new one (not closed here).
        sleep: How to wait between attempts (tests pass a recorder).

    Returns:
        The matching answer and how long it took.

    Raises:
        ConfigError: ``expected`` is empty, a timing value is not positive or
            ``consecutive`` is below 1.
        SmokeError: The deadline passed; carries the last status or error seen.
    """
    _check(expected, deadline=deadline, interval=interval, consecutive=consecutive)
    shown = Redactor()(url)
    start = anyio.current_time()
    end = start + deadline
    wait = interval
    attempts = 0
    in_a_row = 0  # good answers since the last bad one
    best = 0
    last = "no answer"
    async with AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(follow_redirects=True, verify=verify)
            )
        while True:
            attempts += 1
            timeout = max(0.1, min(request_timeout, end - anyio.current_time()))
            try:
                response = await client.get(url, timeout=timeout)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {_snippet(str(exc)) or 'no detail'}"
                in_a_row = 0
            else:
                body = response.text
                problem = contract.check(response.status_code, body, expected)
                if problem is None:
                    in_a_row += 1
                    best = max(best, in_a_row)
                    if in_a_row >= consecutive:
                        return ProbeResult(
                            url=shown,
                            version=_snippet(contract.shown_version(body)),
                            status=response.status_code,
                            attempts=attempts,
                            elapsed=anyio.current_time() - start,
                        )
                    last = f"HTTP {response.status_code}: served it {in_a_row} time(s) in a row"
                else:
                    in_a_row = 0
                    shown_body = _snippet(body) or "(empty body)"
                    last = f"HTTP {response.status_code}, {problem}: {shown_body}"
            now = anyio.current_time()
            if now >= end:
                if best:
                    last += f"; at best {best} good answer(s) in a row, {consecutive} needed"
                raise SmokeError(
                    shown, expected, Redactor()(last), now - start, contract.describe(expected)
                )
            if in_a_row:  # counting good answers: a steady pace, no backoff
                await sleep(min(interval, end - now))
                continue
            await sleep(min(wait, end - now))
            wait = min(wait * backoff, max_interval)
