"""GitHubForge against the GitHub API double: every request's method, path, headers, body."""

from __future__ import annotations

import pytest
from forge_doubles import TOKEN, GitHubApiDouble, RecordedRequest

from conveyor.errors import ForgeError
from conveyor.gitops.forge import GitHubForge, PullRequest
from conveyor.secrets import Secret


def _forge(double: GitHubApiDouble, token: str = TOKEN) -> GitHubForge:
    return GitHubForge("acme/manifests", Secret("GITHUB_TOKEN", token), api_url=double.url)


def _assert_github_headers(request: RecordedRequest) -> None:
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"


def test_open_posts_the_documented_body(github_double: GitHubApiDouble) -> None:
    forge = _forge(github_double)
    pull = forge.open("conveyor/promote-production-hello", "main", "Promote hello", "body text")
    assert pull == PullRequest(
        number=1,
        url="https://github.com/acme/manifests/pull/1",
        head="conveyor/promote-production-hello",
        base="main",
        title="Promote hello",
        body="body text",
    )
    (request,) = github_double.requests
    assert (request.method, request.path) == ("POST", "/repos/acme/manifests/pulls")
    _assert_github_headers(request)
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "title": "Promote hello",
        "head": "conveyor/promote-production-hello",
        "base": "main",
        "body": "body text",
    }


def test_find_open_filters_by_owner_head_base_and_state(github_double: GitHubApiDouble) -> None:
    forge = _forge(github_double)
    assert forge.find_open("conveyor/promote-production-hello", "main") is None
    opened = forge.open("conveyor/promote-production-hello", "main", "t", "b")
    forge.open("conveyor/promote-production-other", "main", "t", "b")
    assert forge.find_open("conveyor/promote-production-hello", "main") == opened
    assert forge.find_open("conveyor/promote-production-hello", "release") is None
    request = github_double.requests[0]
    assert (request.method, request.path) == ("GET", "/repos/acme/manifests/pulls")
    assert request.query == {
        "head": "acme:conveyor/promote-production-hello",
        "base": "main",
        "state": "open",
    }
    _assert_github_headers(request)
    assert request.body is None


def test_update_patches_title_and_body(github_double: GitHubApiDouble) -> None:
    forge = _forge(github_double)
    forge.open("b", "main", "old", "old body")
    pull = forge.update(1, "new", "new body")
    assert (pull.title, pull.body) == ("new", "new body")
    request = github_double.requests[-1]
    assert (request.method, request.path) == ("PATCH", "/repos/acme/manifests/pulls/1")
    _assert_github_headers(request)
    assert request.body == {"title": "new", "body": "new body"}


def test_labels_go_to_the_issues_endpoint(github_double: GitHubApiDouble) -> None:
    forge = _forge(github_double)
    forge.open("b", "main", "t", "b")
    forge.add_labels(1, ["promotion", "production"])
    request = github_double.requests[-1]
    assert (request.method, request.path) == ("POST", "/repos/acme/manifests/issues/1/labels")
    _assert_github_headers(request)
    assert request.body == {"labels": ["promotion", "production"]}
    assert github_double.pulls[1]["labels"] == [{"name": "promotion"}, {"name": "production"}]


def test_reviewers_go_to_requested_reviewers(github_double: GitHubApiDouble) -> None:
    forge = _forge(github_double)
    forge.open("b", "main", "t", "b")
    forge.request_reviewers(1, ["alice", "bob"])
    request = github_double.requests[-1]
    assert (request.method, request.path) == (
        "POST",
        "/repos/acme/manifests/pulls/1/requested_reviewers",
    )
    _assert_github_headers(request)
    assert request.body == {"reviewers": ["alice", "bob"]}


def test_no_labels_or_reviewers_sends_nothing(github_double: GitHubApiDouble) -> None:
    forge = _forge(github_double)
    forge.add_labels(1, [])
    forge.request_reviewers(1, [])
    assert github_double.requests == []


def test_expired_token_says_so_without_showing_it(github_double: GitHubApiDouble) -> None:
    expired = "ghp_expired-token-value-42"
    forge = _forge(github_double, token=expired)
    with pytest.raises(ForgeError) as caught:
        forge.open("b", "main", "t", "b")
    error = caught.value
    assert error.status == 401
    assert error.method == "POST"
    assert error.url == f"{github_double.url}/repos/acme/manifests/pulls"
    assert str(error) == (
        f"GitHub API POST {github_double.url}/repos/acme/manifests/pulls answered 401: "
        "Bad credentials (the token in $GITHUB_TOKEN is invalid or expired)\n"
        "  hint: check that the token is valid, not expired, and has the needed scopes"
    )
    assert expired not in str(error)
    assert github_double.requests[0].headers["authorization"] == f"Bearer {expired}"


def test_forbidden_names_missing_scope(github_double: GitHubApiDouble) -> None:
    github_double.fail_next(403, {"message": "Resource not accessible by personal access token"})
    with pytest.raises(ForgeError) as caught:
        _forge(github_double).add_labels(1, ["x"])
    assert caught.value.status == 403
    assert caught.value.detail == (
        "Resource not accessible by personal access token (the token in $GITHUB_TOKEN lacks "
        "the scope or permission for this call, or a rate limit was hit)"
    )
    assert TOKEN not in str(caught.value)


def test_validation_errors_carry_github_s_words(github_double: GitHubApiDouble) -> None:
    forge = _forge(github_double)
    forge.open("b", "main", "t", "b")
    with pytest.raises(ForgeError) as caught:
        forge.open("b", "main", "t", "b")
    assert caught.value.status == 422
    assert caught.value.detail == "Validation Failed; A pull request already exists for acme:b."
    assert caught.value.hint is None


def test_an_echoed_token_is_masked(github_double: GitHubApiDouble) -> None:
    github_double.fail_next(400, {"message": f"bad header Bearer {TOKEN}"})
    with pytest.raises(ForgeError) as caught:
        _forge(github_double).find_open("b", "main")
    assert caught.value.detail == "bad header Bearer ***"
    assert TOKEN not in str(caught.value)


def test_an_answer_that_is_not_a_pull_request_is_an_error(github_double: GitHubApiDouble) -> None:
    github_double.fail_next(200, {"unexpected": True})
    with pytest.raises(ForgeError, match="unexpected answer") as caught:
        _forge(github_double).find_open("b", "main")
    assert caught.value.method == "GET"
