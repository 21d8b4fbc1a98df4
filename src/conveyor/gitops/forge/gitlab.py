"""GitLab's REST API (v4) as a :class:`~conveyor.gitops.forge.port.Forge`.

Endpoints used (https://docs.gitlab.com/api/merge_requests/), where ``{id}``
is the project's numeric id or its URL-encoded path (``group%2Fproject``):

- ``GET /projects/{id}/merge_requests?source_branch=B&target_branch=T&state=opened``
- ``POST /projects/{id}/merge_requests`` with ``source_branch, target_branch, title, description``
- ``PUT /projects/{id}/merge_requests/{iid}`` with ``title, description``;
  ``add_labels`` (comma-separated names) and ``reviewer_ids`` (user ids) likewise.

The token is sent as ``PRIVATE-TOKEN`` (personal, project or group access
tokens); ``bearer=True`` sends ``Authorization: Bearer`` for OAuth tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from conveyor.errors import ConfigError, ForgeError
from conveyor.gitops.forge.port import PullRequest
from conveyor.gitops.forge.transport import ApiClient
from conveyor.secrets import Secret

API_URL = "https://gitlab.com/api/v4"


class GitLabForge:
    """Merge requests on one GitLab project.

    Args:
        project: The project's path (``group/sub/project``) or numeric id.
        token: A token with the ``api`` scope.
        api_url: The API root, ``https://HOST/api/v4``.
        bearer: Send ``Authorization: Bearer`` instead of ``PRIVATE-TOKEN``.
        timeout: Seconds per connect/read.
        transport: An httpx transport (only tests pass one).
    """

    name = "GitLab"

    def __init__(
        self,
        project: str,
        token: Secret,
        *,
        api_url: str = API_URL,
        bearer: bool = False,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.project = project
        self._prefix = f"/projects/{quote(project, safe='')}/merge_requests"
        auth = (
            {"Authorization": f"Bearer {token.reveal()}"}
            if bearer
            else {"PRIVATE-TOKEN": token.reveal()}
        )
        self._api = ApiClient(
            self.name,
            api_url,
            token,
            headers={"Accept": "application/json"},
            auth_headers=auth,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._api.close()

    def find_open(self, head: str, base: str) -> PullRequest | None:
        """The opened merge request from ``head`` into ``base``, if any."""
        found = self._api.request(
            "GET",
            self._prefix,
            params={"source_branch": head, "target_branch": base, "state": "opened"},
        )
        if not isinstance(found, list):
            raise self._unexpected("GET", "", found)
        for item in found:
            merge_request = self._merge_request(item, "GET", "")
            if merge_request.head == head and merge_request.base == base:
                return merge_request
        return None

    def open(self, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open a merge request from ``head`` into ``base``."""
        created = self._api.request(
            "POST",
            self._prefix,
            json={
                "source_branch": head,
                "target_branch": base,
                "title": title,
                "description": body,
            },
        )
        return self._merge_request(created, "POST", "")

    def update(self, number: int, title: str, body: str) -> PullRequest:
        """Replace the title and description of merge request ``!number``."""
        updated = self._api.request(
            "PUT", f"{self._prefix}/{number}", json={"title": title, "description": body}
        )
        return self._merge_request(updated, "PUT", f"/{number}")

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        """Add ``labels`` to merge request ``!number`` (GitLab takes a comma-separated list)."""
        if labels:
            self._api.request(
                "PUT", f"{self._prefix}/{number}", json={"add_labels": ",".join(labels)}
            )

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        """Set the reviewers of ``!number`` to the GitLab users with ids ``reviewers``."""
        if not reviewers:
            return
        ids: list[int] = []
        for reviewer in reviewers:
            if not reviewer.isdigit():
                raise ConfigError(
                    None,
                    "gitops.forge.reviewers",
                    f"GitLab reviewer {reviewer!r} is not a numeric user id",
                    hint="GET /api/v4/users?username=NAME shows a user's id",
                )
            ids.append(int(reviewer))
        self._api.request("PUT", f"{self._prefix}/{number}", json={"reviewer_ids": ids})

    def _merge_request(self, item: Any, method: str, path: str) -> PullRequest:
        try:
            return PullRequest(
                number=int(item["iid"]),
                url=str(item["web_url"]),
                head=str(item["source_branch"]),
                base=str(item["target_branch"]),
                title=str(item["title"]),
                body=str(item.get("description") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unexpected(method, path, item) from exc

    def _unexpected(self, method: str, path: str, document: object) -> ForgeError:
        return ForgeError(
            self.name,
            method,
            f"{self._api.base_url}{self._prefix}{path}",
            200,
            f"unexpected answer {str(document)[:120]!r}; is api_url the REST API root (…/api/v4)?",
        )
