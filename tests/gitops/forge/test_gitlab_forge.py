"""GitLabForge against the GitLab API double: every request's method, path, headers, body."""

from __future__ import annotations

import pytest
from forge_doubles import TOKEN, GitLabApiDouble

from conveyor.errors import ConfigError, ForgeError
from conveyor.gitops.forge import GitLabForge, PullRequest
from conveyor.secrets import Secret

PREFIX = "/api/v4/projects/acme%2Fdeploy%2Fmanifests/merge_requests"


def _forge(double: GitLabApiDouble, token: str = TOKEN, *, bearer: bool = False) -> GitLabForge:
    return GitLabForge(
        "acme/deploy/manifests", Secret("GITLAB_TOKEN", token), api_url=double.url, bearer=bearer
    )


def test_open_posts_to_the_url_encoded_project(gitlab_double: GitLabApiDouble) -> None:
    merge_request = _forge(gitlab_double).open("promote", "main", "Promote hello", "text")
    assert merge_request == PullRequest(
        number=1,
        url="https://gitlab.com/acme/deploy/manifests/-/merge_requests/1",
        head="promote",
        base="main",
        title="Promote hello",
        body="text",
    )
    (request,) = gitlab_double.requests
    assert (request.method, request.path) == ("POST", PREFIX)
    assert request.headers["private-token"] == TOKEN
    assert "authorization" not in request.headers
    assert request.headers["accept"] == "application/json"
    assert request.body == {
        "source_branch": "promote",
        "target_branch": "main",
        "title": "Promote hello",
        "description": "text",
    }


def test_bearer_mode_sends_authorization(gitlab_double: GitLabApiDouble) -> None:
    _forge(gitlab_double, bearer=True).find_open("promote", "main")
    (request,) = gitlab_double.requests
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "private-token" not in request.headers


def test_a_numeric_project_id_is_used_as_is(gitlab_double: GitLabApiDouble) -> None:
    forge = GitLabForge("42", Secret("GITLAB_TOKEN", TOKEN), api_url=gitlab_double.url)
    forge.open("promote", "main", "t", "d")
    assert gitlab_double.requests[0].path == "/api/v4/projects/42/merge_requests"


def test_find_open_filters_source_target_and_state(gitlab_double: GitLabApiDouble) -> None:
    forge = _forge(gitlab_double)
    assert forge.find_open("promote", "main") is None
    opened = forge.open("promote", "main", "t", "d")
    forge.open("other", "main", "t", "d")
    assert forge.find_open("promote", "main") == opened
    request = gitlab_double.requests[0]
    assert (request.method, request.path) == ("GET", PREFIX)
    assert request.query == {"source_branch": "promote", "target_branch": "main", "state": "opened"}


def test_update_puts_title_and_description(gitlab_double: GitLabApiDouble) -> None:
    forge = _forge(gitlab_double)
    forge.open("promote", "main", "old", "old")
    merge_request = forge.update(1, "new", "new text")
    assert (merge_request.title, merge_request.body) == ("new", "new text")
    request = gitlab_double.requests[-1]
    assert (request.method, request.path) == ("PUT", f"{PREFIX}/1")
    assert request.body == {"title": "new", "description": "new text"}


def test_labels_are_a_comma_separated_add_labels(gitlab_double: GitLabApiDouble) -> None:
    forge = _forge(gitlab_double)
    forge.open("promote", "main", "t", "d")
    forge.add_labels(1, ["promotion", "production"])
    request = gitlab_double.requests[-1]
    assert (request.method, request.path) == ("PUT", f"{PREFIX}/1")
    assert request.body == {"add_labels": "promotion,production"}
    assert gitlab_double.merge_requests[1]["labels"] == ["promotion", "production"]


def test_reviewers_are_integer_ids(gitlab_double: GitLabApiDouble) -> None:
    forge = _forge(gitlab_double)
    forge.open("promote", "main", "t", "d")
    forge.request_reviewers(1, ["7", "12"])
    request = gitlab_double.requests[-1]
    assert (request.method, request.path) == ("PUT", f"{PREFIX}/1")
    assert request.body == {"reviewer_ids": [7, 12]}


def test_a_reviewer_name_is_refused_before_any_request(gitlab_double: GitLabApiDouble) -> None:
    with pytest.raises(ConfigError, match="GitLab reviewer 'alice' is not a numeric user id"):
        _forge(gitlab_double).request_reviewers(1, ["alice"])
    assert gitlab_double.requests == []


def test_expired_token(gitlab_double: GitLabApiDouble) -> None:
    expired = "glpat-expired-0000"
    with pytest.raises(ForgeError) as caught:
        _forge(gitlab_double, token=expired).find_open("promote", "main")
    assert str(caught.value) == (
        f"GitLab API GET {gitlab_double.url}/projects/acme%2Fdeploy%2Fmanifests/merge_requests"
        "?source_branch=promote&target_branch=main&state=opened answered 401: "
        "401 Unauthorized (the token in $GITLAB_TOKEN is invalid or expired)\n"
        "  hint: check that the token is valid, not expired, and has the needed scopes"
    )
    assert expired not in str(caught.value)


def test_conflict_carries_gitlab_s_message_list(gitlab_double: GitLabApiDouble) -> None:
    forge = _forge(gitlab_double)
    forge.open("promote", "main", "t", "d")
    with pytest.raises(ForgeError) as caught:
        forge.open("promote", "main", "t", "d")
    assert caught.value.status == 409
    assert caught.value.detail == (
        "Another open merge request already exists for this source branch: !1"
    )


def test_error_key_is_read_too(gitlab_double: GitLabApiDouble) -> None:
    with pytest.raises(ForgeError) as caught:
        _forge(gitlab_double).open("promote", "main", "", "d")
    assert (caught.value.status, caught.value.detail) == (400, "title is missing")
