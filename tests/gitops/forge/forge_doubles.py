"""Test doubles of the GitHub and GitLab REST APIs: real HTTP servers on 127.0.0.1.

GitHub and GitLab cannot be reached from here, so these doubles speak the
documented endpoints Conveyor uses (see ``conveyor.gitops.forge.github`` and
``.gitlab``) over a real socket, keep pull/merge requests in memory, check
the token like the services do (401 with their messages), and record every
request so tests can assert the method, path, headers and JSON body sent.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlsplit

TOKEN = "ghp_test-token-0123456789abcdef"
"""The token the doubles accept in the tests (a made-up value)."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double received it (``path`` raw, percent-encoding kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class _Answer:
    status: int
    document: Any


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: list[_Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _ApiDouble:
    """A threaded HTTP server on a random port of 127.0.0.1 that routes to ``handle``."""

    api_root = ""

    def __init__(self, token: str) -> None:
        self.token = token
        self.state = _State()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = RecordedRequest(
                    method=self.command,
                    path=split.path,
                    query=dict(parse_qsl(split.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                answer = double._answer(request)
                data = json.dumps(answer.document).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                """Stay quiet: the recorded requests are the log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The API root a client is configured with."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.api_root}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order."""
        with self.state.lock:
            return list(self.state.requests)

    def fail_next(self, status: int, document: Any) -> None:
        """Answer the next request (after the token check) with ``status`` and ``document``."""
        with self.state.lock:
            self.state.failures.append(_Answer(status, document))

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _answer(self, request: RecordedRequest) -> _Answer:
        with self.state.lock:
            self.state.requests.append(request)
            if not self.authorised(request):
                return self.unauthorised()
            if self.state.failures:
                return self.state.failures.pop(0)
            return self.handle(request)

    def authorised(self, request: RecordedRequest) -> bool:
        raise NotImplementedError

    def unauthorised(self) -> _Answer:
        raise NotImplementedError

    def handle(self, request: RecordedRequest) -> _Answer:
        raise NotImplementedError


def _branch_exists(repository: Path | None, branch: str) -> bool:
    if repository is None:
        return True
    done = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


class GitHubApiDouble(_ApiDouble):
    """Double of GitHub's REST API v3 for one repository ``owner/repo``.

    Args:
        owner: The repository's owner.
        repo: The repository's name.
        token: The one token it accepts (``Authorization: Bearer``).
        repository: A bare git repository standing for the GitHub one; when
            given, opening a pull request whose head branch it lacks fails
            with 422 as on GitHub.
    """

    def __init__(
        self, owner: str, repo: str, token: str, *, repository: Path | None = None
    ) -> None:
        self.owner = owner
        self.repo = repo
        self.repository = repository
        self.pulls: dict[int, dict[str, Any]] = {}
        super().__init__(token)

    def authorised(self, request: RecordedRequest) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorised(self) -> _Answer:
        return _Answer(
            401,
            {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
        )

    def handle(self, request: RecordedRequest) -> _Answer:  # noqa: PLR0911 - one per route
        prefix = f"/repos/{self.owner}/{self.repo}"
        if not request.path.startswith(prefix + "/"):
            return _Answer(404, {"message": "Not Found"})
        parts = request.path[len(prefix) + 1 :].split("/")
        body = request.body or {}
        match request.method, parts:
            case "GET", ["pulls"]:
                return _Answer(200, self._list(request.query))
            case "POST", ["pulls"]:
                return self._create(body)
            case "PATCH", ["pulls", number] if int(number) in self.pulls:
                pull = self.pulls[int(number)]
                pull.update({k: body[k] for k in ("title", "body", "state") if k in body})
                return _Answer(200, pull)
            case "POST", ["issues", number, "labels"] if int(number) in self.pulls:
                pull = self.pulls[int(number)]
                for name in body.get("labels", []):
                    if name not in [label["name"] for label in pull["labels"]]:
                        pull["labels"].append({"name": name})
                return _Answer(200, pull["labels"])
            case "POST", ["pulls", number, "requested_reviewers"] if int(number) in self.pulls:
                pull = self.pulls[int(number)]
                for login in body.get("reviewers", []):
                    if login not in [user["login"] for user in pull["requested_reviewers"]]:
                        pull["requested_reviewers"].append({"login": login})
                return _Answer(201, pull)
        return _Answer(404, {"message": "Not Found"})

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        found = []
        for pull in self.pulls.values():
            if state != "all" and pull["state"] != state:
                continue
            if "head" in query and query["head"] != pull["head"]["label"]:
                continue
            if "base" in query and query["base"] != pull["base"]["ref"]:
                continue
            found.append(pull)
        return found

    def _create(self, body: dict[str, Any]) -> _Answer:
        for key in ("title", "head", "base"):
            if not body.get(key):
                return _Answer(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "field": key, "code": "missing"}],
                    },
                )
        head, base = body["head"], body["base"]
        if not _branch_exists(self.repository, head):
            return _Answer(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}],
                },
            )
        for pull in self.pulls.values():
            if (
                pull["state"] == "open"
                and pull["head"]["ref"] == head
                and pull["base"]["ref"] == base
            ):
                return _Answer(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": "A pull request already exists for "
                                f"{self.owner}:{head}.",
                            }
                        ],
                    },
                )
        number = len(self.pulls) + 1
        self.pulls[number] = {
            "number": number,
            "state": "open",
            "title": body["title"],
            "body": body.get("body"),
            "html_url": f"https://github.com/{self.owner}/{self.repo}/pull/{number}",
            "head": {"ref": head, "label": f"{self.owner}:{head}"},
            "base": {"ref": base, "label": f"{self.owner}:{base}"},
            "labels": [],
            "requested_reviewers": [],
        }
        return _Answer(201, self.pulls[number])


class GitLabApiDouble(_ApiDouble):
    """Double of GitLab's REST API v4 for one project (path ``group/project``, id ``project_id``).

    Args:
        project: The project's path.
        token: The one token it accepts (``PRIVATE-TOKEN`` or ``Authorization: Bearer``).
        project_id: The project's numeric id, accepted in place of the encoded path.
        repository: As for :class:`GitHubApiDouble`.
    """

    api_root = "/api/v4"

    def __init__(
        self,
        project: str,
        token: str,
        *,
        project_id: int = 42,
        repository: Path | None = None,
    ) -> None:
        self.project = project
        self.project_id = project_id
        self.repository = repository
        self.merge_requests: dict[int, dict[str, Any]] = {}
        super().__init__(token)

    def authorised(self, request: RecordedRequest) -> bool:
        return request.headers.get("private-token") == self.token or (
            request.headers.get("authorization") == f"Bearer {self.token}"
        )

    def unauthorised(self) -> _Answer:
        return _Answer(401, {"message": "401 Unauthorized"})

    def handle(self, request: RecordedRequest) -> _Answer:
        prefixes = (
            f"/api/v4/projects/{quote(self.project, safe='')}/merge_requests",
            f"/api/v4/projects/{self.project_id}/merge_requests",
        )
        rest = None
        for prefix in prefixes:
            if request.path == prefix or request.path.startswith(prefix + "/"):
                rest = request.path[len(prefix) :].strip("/")
        if rest is None:
            return _Answer(404, {"message": "404 Project Not Found"})
        body = request.body or {}
        if request.method == "GET" and not rest:
            return _Answer(200, self._list(request.query))
        if request.method == "POST" and not rest:
            return self._create(body)
        if request.method == "PUT" and rest.isdigit() and int(rest) in self.merge_requests:
            return _Answer(200, self._update(self.merge_requests[int(rest)], body))
        return _Answer(404, {"message": "404 Not found"})

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        found = []
        for merge_request in self.merge_requests.values():
            if query.get("state", "all") not in ("all", merge_request["state"]):
                continue
            if (
                query.get("source_branch", merge_request["source_branch"])
                != merge_request["source_branch"]
            ):
                continue
            if (
                query.get("target_branch", merge_request["target_branch"])
                != merge_request["target_branch"]
            ):
                continue
            found.append(merge_request)
        return found

    def _create(self, body: dict[str, Any]) -> _Answer:
        missing = [k for k in ("source_branch", "target_branch", "title") if not body.get(k)]
        if missing:
            return _Answer(400, {"error": f"{', '.join(missing)} is missing"})
        source, target = body["source_branch"], body["target_branch"]
        if not _branch_exists(self.repository, source):
            return _Answer(400, {"message": ["Source branch does not exist"]})
        for merge_request in self.merge_requests.values():
            if (
                merge_request["state"] == "opened"
                and merge_request["source_branch"] == source
                and merge_request["target_branch"] == target
            ):
                return _Answer(
                    409,
                    {
                        "message": [
                            "Another open merge request already exists for this source "
                            f"branch: !{merge_request['iid']}"
                        ]
                    },
                )
        iid = len(self.merge_requests) + 1
        self.merge_requests[iid] = {
            "id": 1000 + iid,
            "iid": iid,
            "project_id": self.project_id,
            "state": "opened",
            "title": body["title"],
            "description": body.get("description"),
            "source_branch": source,
            "target_branch": target,
            "web_url": f"https://gitlab.com/{self.project}/-/merge_requests/{iid}",
            "labels": [],
            "reviewers": [],
        }
        return _Answer(201, self.merge_requests[iid])

    def _update(self, merge_request: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        for key in ("title", "description"):
            if key in body:
                merge_request[key] = body[key]
        if "labels" in body:
            merge_request["labels"] = [x for x in body["labels"].split(",") if x]
        for name in (body.get("add_labels") or "").split(","):
            if name and name not in merge_request["labels"]:
                merge_request["labels"].append(name)
        if "reviewer_ids" in body:
            merge_request["reviewers"] = [{"id": i} for i in body["reviewer_ids"]]
        return merge_request
