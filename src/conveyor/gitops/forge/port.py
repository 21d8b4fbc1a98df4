"""The forge port: the few pull/merge-request operations promotion needs.

GitHub calls them pull requests, GitLab merge requests; here both are a
:class:`PullRequest` whose ``number`` is GitHub's ``number`` or GitLab's
``iid`` (the ``!123`` shown in the web UI).  The adapters are synchronous:
promotion runs once per command, between two git subprocesses, and a sync
client keeps it callable from the CLI and (through ``anyio.to_thread``)
from async code alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PullRequest:
    """An open pull (merge) request as the forge reported it."""

    number: int
    url: str
    head: str
    base: str
    title: str
    body: str


class Forge(Protocol):
    """A code forge that can open and update pull (merge) requests."""

    @property
    def name(self) -> str:
        """The forge's name as shown to users ("GitHub", "GitLab")."""
        ...

    def find_open(self, head: str, base: str) -> PullRequest | None:
        """The open pull request from branch ``head`` into ``base``, if any."""
        ...

    def open(self, head: str, base: str, title: str, body: str) -> PullRequest:
        """Open a pull request from ``head`` into ``base``."""
        ...

    def update(self, number: int, title: str, body: str) -> PullRequest:
        """Replace the title and description of pull request ``number``."""
        ...

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        """Add ``labels`` to pull request ``number`` (existing labels stay)."""
        ...

    def request_reviewers(self, number: int, reviewers: Sequence[str]) -> None:
        """Ask ``reviewers`` (GitHub logins, GitLab user ids) to review ``number``."""
        ...

    def close(self) -> None:
        """Release the HTTP connections."""
        ...
