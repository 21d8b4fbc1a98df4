"""GitHub's REST API (v3, version 2022-11-28) as a :class:`~conveyor.gitops.forge.port.Forge`.

Endpoints used (https://docs.github.com/en/rest/pulls/pulls):

- ``GET /repos/{owner}/{repo}/pulls?head=owner:branch&base=B&state=open``
- ``POST /repos/{owner}/{repo}/pulls`` with ``title, head, base, body``
- ``PATCH /repos/{owner}/{repo}/pulls/{number}`` with ``title, body``
- ``POST /repos/{owner}/{repo}/issues/{number}/labels`` with ``labels``
- ``POST /repos/{owner}/{repo}/pulls/{number}/requested_reviewers`` with ``reviewers``
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from conveyor.errors import ForgeError
from conveyor.gitops.forge.port import PullRequest
from conveyor.gitops.forge.transport import ApiClient
from conveyor.secrets import Secret

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"


class GitHubForge:
    """Pull requests on one GitHub repository.

    Args:
        repository: ``owner/repo``.
        token: A token with "Pull requests: write" (and "Issues: write" for labels).
        api_url: The API root; ``https://HOST/api/v3`` on GitHub Enterprise Server.
        timeout: Seconds per connect/read.
        transport: An httpx transport (only tests pass one).
    """

    name = "GitHub"

    def __init__(
        self,
        repository: str,
        token: Secret,
        *,
        api_url: str = API_URL,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.owner, _, self.repo = repository.partition("/")
        self._prefix = f"/repos/{quote(self.owner, safe='')}/{quote(self.repo, safe='')}"
        self._api = ApiClient(
            self.name,
            api_url,
            token,
            headers={"Accept": ACCEPT, "X-GitHub-Api-Version": API_VERSION},
            auth_headers={"Authorization": f"Bearer {token.reveal()}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._api.close()

    def find_open(self, head: str, base: str) -> PullRequest | None:
        """The open pull request from ``owner:head`` into ``base``, if any."""
        found = self._api.request(
            "GET",
            f"{self._prefix}/pulls",
            params={"head": f"{self.owner}:{head}", "base": base, "state": "open"},
        )
        if not isinstance(found, list):
            raise self._unexpected("GET", "/pulls", found)
        for item in found:
            pull = self._pull(item, "GET", "/pulls")
            if pull.head == head and pull.base == base:
                return pull
        return None

    def open(self, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open a pull request from ``head`` (a branch of this repository) into ``base``."""
        created = self._api.request(
            "POST",
            f"{self._prefix}/pulls",
            json={"title": title, "head": head, "base": base, "body": body},
        )
        return self._pull(created, "POST", "/pulls")

    def update(self, number: int, title: str, body: str) -> PullRequest:
        """Replace the title and body of pull request ``number``."""
        updated = self._api.request(
            "PATCH", f"{self._prefix}/pulls/{number}", json={"title": title, "body": body}
        )
        return self._pull(updated, "PATCH", f"/pulls/{number}")

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        """Add ``labels`` (created by GitHub when missing) to pull request ``number``."""
        if labels:
            self._api.request(
                "POST", f"{self._prefix}/issues/{number}/labels", json={"labels": list(labels)}
            )

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        """Request a review from the GitHub users ``reviewers`` (logins)."""
        if reviewers:
            self._api.request(
                "POST",
                f"{self._prefix}/pulls/{number}/requested_reviewers",
                json={"reviewers": list(reviewers)},
            )

    def _pull(self, item: Any, method: str, path: str) -> PullRequest:
        try:
            return PullRequest(
                number=int(item["number"]),
                url=str(item["html_url"]),
                head=str(item["head"]["ref"]),
                base=str(item["base"]["ref"]),
                title=str(item["title"]),
                body=str(item.get("body") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unexpected(method, path, item) from exc

    def _unexpected(self, method: str, path: str, document: object) -> ForgeError:
        return ForgeError(
            self.name,
            method,
            f"{self._api.base_url}{self._prefix}{path}",
            200,
            f"unexpected answer {str(document)[:120]!r}; is api_url the REST API root?",
        )
