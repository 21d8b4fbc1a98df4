"""promote/rollback against a real bare manifest repository and the forge API doubles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from forge.forge_doubles import TOKEN, GitHubApiDouble, GitLabApiDouble
from promotion_repo import (
    BRANCH,
    DIGEST_A,
    DIGEST_B,
    PRODUCTION,
    SHA_A,
    SHA_B,
    STAGING,
    Remote,
    git,
    make_remote,
)
from pydantic import ValidationError

from conveyor.config.models import Config, HelmValuesConfig
from conveyor.errors import ConfigError, ForgeError, GitOpsError
from conveyor.gitops.git import Git
from conveyor.gitops.kustomization import ImageEntry
from conveyor.gitops.promotion import _push_promotion_branch, promote, promotion_branch, rollback
from conveyor.gitops.renderer import render

ENV = {"FORGE_TOKEN": TOKEN}


@pytest.fixture
def remote(manifests: Path, tmp_path: Path) -> Remote:
    return make_remote(manifests, tmp_path)


@pytest.fixture
def github() -> Iterator[GitHubApiDouble]:
    with GitHubApiDouble("acme", "manifests", TOKEN) as double:
        yield double


def make_config(
    remote: Remote,
    forge_url: str,
    *,
    kind: str = "github",
    project: str = "acme/manifests",
    production: str = "pull-request",
    reviewers: tuple[str, ...] = ("alice",),
) -> Config:
    data: dict[str, Any] = {
        "app": {"name": "hello", "source_url": "https://github.com/acme/hello.git"},
        "registry": {"host": "myacr.azurecr.io", "repository": "hello"},
        "gitops": {
            "repo": str(remote.bare),
            "branch": "main",
            "environments": {
                "staging": {"path": "apps/hello/overlays/staging", "promotion": "commit"},
                "production": {"path": "apps/hello/overlays/production", "promotion": production},
            },
            "forge": {
                "kind": kind,
                "project": project,
                "api_url": forge_url,
                "token_env": "FORGE_TOKEN",
                "labels": ["promotion", "env:production"],
                "reviewers": list(reviewers),
            },
        },
        "root": remote.work,
    }
    return Config.model_validate(data)


def test_promote_to_production_pushes_a_branch_and_opens_a_pull_request(
    remote: Remote, github: GitHubApiDouble
) -> None:
    main_before = remote.sha()
    proposal = promote(make_config(remote, github.url), "staging", "production", env=ENV)

    assert remote.sha() == main_before
    assert remote.branches() == [BRANCH, "main"]
    expected = ImageEntry("hello", "myacr.azurecr.io/hello", SHA_A, DIGEST_A)
    assert remote.image(BRANCH, PRODUCTION) == expected
    assert remote.image("main", PRODUCTION) is None
    assert git("--git-dir", str(remote.bare), "rev-parse", f"{BRANCH}~1") == main_before
    assert proposal.image == expected
    assert proposal.previous is None
    assert proposal.commit == remote.sha(BRANCH)
    assert proposal.opened is True
    assert proposal.pull_request is not None
    assert proposal.pull_request.url == "https://github.com/acme/manifests/pull/1"

    calls = [(r.method, r.path) for r in github.requests]
    assert calls == [
        ("GET", "/repos/acme/manifests/pulls"),
        ("POST", "/repos/acme/manifests/pulls"),
        ("POST", "/repos/acme/manifests/issues/1/labels"),
        ("POST", "/repos/acme/manifests/pulls/1/requested_reviewers"),
    ]
    for request in github.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-github-api-version"] == "2022-11-28"
    assert github.requests[0].query == {"head": f"acme:{BRANCH}", "base": "main", "state": "open"}
    opened = github.requests[1].body
    assert opened["head"] == BRANCH
    assert opened["base"] == "main"
    assert opened["title"] == f"promote(production): hello {SHA_A[:12]} from staging"
    body = opened["body"]
    assert (
        f"| Source commit | `{SHA_A}` ([commit](https://github.com/acme/hello/commit/{SHA_A})) |"
        in body
    )
    assert f"| Image digest | `{DIGEST_A}` |" in body
    assert "| Replaces | no image pinned |" in body
    assert (
        f"```diff\n--- a/{PRODUCTION}\n+++ b/{PRODUCTION}\n@@ -15 +15,6 @@\n"
        "         value: 3\n+images:\n+- name: hello\n+  newName: myacr.azurecr.io/hello\n"
        f"+  newTag: {SHA_A}\n+  digest: {DIGEST_A}\n```"
    ) in body
    assert github.requests[2].body == {"labels": ["promotion", "env:production"]}
    assert github.requests[3].body == {"reviewers": ["alice"]}


def test_the_promoted_overlay_renders_with_the_exact_image(
    remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    promote(make_config(remote, github.url), "staging", "production", env=ENV)
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", "--branch", BRANCH, str(remote.bare), str(checkout))
    rendered = render(checkout / "apps/hello/overlays/production")
    assert f"image: myacr.azurecr.io/hello:{SHA_A}@{DIGEST_A}" in rendered


def test_running_again_updates_the_open_pull_request(
    remote: Remote, github: GitHubApiDouble
) -> None:
    config = make_config(remote, github.url)
    promote(config, "staging", "production", env=ENV)
    remote.set_staging(SHA_B, DIGEST_B)
    main_before = remote.sha()

    proposal = promote(config, "staging", "production", env=ENV)

    assert remote.sha() == main_before
    assert remote.image(BRANCH, PRODUCTION) == ImageEntry(
        "hello", "myacr.azurecr.io/hello", SHA_B, DIGEST_B
    )
    assert git("--git-dir", str(remote.bare), "rev-parse", f"{BRANCH}~1") == main_before
    assert proposal.opened is False
    assert proposal.pull_request is not None
    assert proposal.pull_request.number == 1
    assert len(github.pulls) == 1
    patch = [r for r in github.requests if r.method == "PATCH"]
    assert [r.path for r in patch] == ["/repos/acme/manifests/pulls/1"]
    assert patch[0].body["title"] == f"promote(production): hello {SHA_B[:12]} from staging"
    assert f"`{DIGEST_B}`" in patch[0].body["body"]
    assert [(r.method, r.path) for r in github.requests[4:]] == [
        ("GET", "/repos/acme/manifests/pulls"),
        ("PATCH", "/repos/acme/manifests/pulls/1"),
        ("POST", "/repos/acme/manifests/issues/1/labels"),
        ("POST", "/repos/acme/manifests/pulls/1/requested_reviewers"),
    ]


def test_running_again_unchanged_does_not_rewrite_the_branch(
    remote: Remote, github: GitHubApiDouble
) -> None:
    config = make_config(remote, github.url)
    first = promote(config, "staging", "production", env=ENV)
    branch_before = remote.sha(BRANCH)
    second = promote(config, "staging", "production", env=ENV)
    assert remote.sha(BRANCH) == branch_before
    assert second.commit == first.commit
    assert second.opened is False


def test_promote_on_gitlab_opens_a_merge_request(remote: Remote) -> None:
    with GitLabApiDouble("acme/manifests", TOKEN) as gitlab:
        config = make_config(remote, gitlab.url, kind="gitlab", reviewers=("7",))
        proposal = promote(config, "staging", "production", env=ENV)
        bodies = [(r.method, r.body) for r in gitlab.requests]
    assert proposal.describe().startswith(
        "production: opened merge request !1 https://gitlab.com/acme/manifests/-/merge_requests/1\n"
    )
    assert bodies[1][0] == "POST"
    assert bodies[1][1]["source_branch"] == BRANCH
    assert bodies[1][1]["target_branch"] == "main"
    assert bodies[2:] == [
        ("PUT", {"add_labels": "promotion,env:production"}),
        ("PUT", {"reviewer_ids": [7]}),
    ]


def with_qa_on_the_production_overlay(config: Config, *, protected: bool) -> Config:
    """``config`` plus a commit environment ``qa`` whose path is production's overlay."""
    assert config.gitops is not None
    environments = config.gitops.environments
    production = environments["production"].model_copy(update={"protected": protected})
    qa = environments["staging"].model_copy(update={"path": "apps/hello/overlays/production"})
    gitops = config.gitops.model_copy(
        update={"environments": {**environments, "production": production, "qa": qa}}
    )
    return config.model_copy(update={"gitops": gitops})


def test_a_commit_environment_is_updated_directly(remote: Remote, github: GitHubApiDouble) -> None:
    # production unprotected here: qa shares its overlay, which a commit may then change
    config = with_qa_on_the_production_overlay(
        make_config(remote, github.url, production="pull-request"), protected=False
    )
    main_before = remote.sha()
    proposal = promote(config, "staging", "qa", env=ENV)
    assert git("--git-dir", str(remote.bare), "rev-parse", "main~1") == main_before
    assert proposal.commit == remote.sha()
    assert remote.image("main", PRODUCTION) == ImageEntry(
        "hello", "myacr.azurecr.io/hello", SHA_A, DIGEST_A
    )
    assert remote.branches() == ["main"]
    assert github.requests == []
    message = git("--git-dir", str(remote.bare), "log", "-1", "--format=%B", "main")
    assert message.startswith(f"deploy(qa): hello {SHA_A[:12]}\n\nimage: ")
    assert "promote: from staging" in message


def test_production_by_commit_is_a_configuration_error(
    remote: Remote, github: GitHubApiDouble
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_config(remote, github.url, production="commit")
    assert "production.promotion is 'commit', but environment 'production' is protected" in str(
        caught.value
    )


def test_a_commit_that_changes_a_protected_environment_s_files_is_refused(
    remote: Remote, github: GitHubApiDouble
) -> None:
    config = with_qa_on_the_production_overlay(make_config(remote, github.url), protected=True)
    main_before = remote.sha()
    with pytest.raises(ConfigError) as caught:
        promote(config, "staging", "qa", env=ENV)
    assert str(caught.value) == (
        "configuration: gitops.environments.qa: changes files that protected environment "
        "'production' renders; a protected environment's files change only through a pull "
        "request, never by a commit on 'main'\n"
        "  hint: keep qa's files (path, flux_setters, helm_values) out of production's overlay "
        "and bases"
    )
    assert remote.sha() == main_before
    assert remote.branches() == ["main"]
    assert github.requests == []


def test_an_expired_forge_token_stops_before_any_push(
    remote: Remote, github: GitHubApiDouble
) -> None:
    main_before = remote.sha()
    with pytest.raises(ForgeError) as caught:
        promote(
            make_config(remote, github.url), "staging", "production", env={"FORGE_TOKEN": "old"}
        )
    assert caught.value.status == 401
    assert "the token in $FORGE_TOKEN is invalid or expired" in str(caught.value)
    assert "old" not in caught.value.url
    assert remote.sha() == main_before
    assert remote.branches() == ["main"]


def test_a_forge_error_names_the_api_s_message(remote: Remote, github: GitHubApiDouble) -> None:
    github.fail_next(200, [])  # the find answers "none open"
    github.fail_next(422, {"message": "Validation Failed", "errors": [{"message": "base gone"}]})
    main_before = remote.sha()
    with pytest.raises(ForgeError, match=r"answered 422: Validation Failed; base gone"):
        promote(make_config(remote, github.url), "staging", "production", env=ENV)
    assert remote.sha() == main_before


def test_unknown_environment(remote: Remote, github: GitHubApiDouble) -> None:
    with pytest.raises(ConfigError) as caught:
        promote(make_config(remote, github.url), "staging", "prod", env=ENV)
    assert str(caught.value) == (
        "configuration: --to: no environment named 'prod' in gitops.environments\n"
        "  hint: known environments: production, staging"
    )


def test_source_equals_target(remote: Remote, github: GitHubApiDouble) -> None:
    with pytest.raises(GitOpsError, match="cannot promote environment 'staging' to itself"):
        promote(make_config(remote, github.url), "staging", "staging", env=ENV)


def test_source_without_a_pinned_image(remote: Remote, github: GitHubApiDouble) -> None:
    config = make_config(remote, github.url)
    main_before = remote.sha()
    with pytest.raises(GitOpsError) as caught:
        promote(config, "production", "staging", env=ENV)
    assert str(caught.value) == (
        "environment 'production' pins no image named 'hello' in "
        "apps/hello/overlays/production (branch 'main'); there is nothing exact to promote\n"
        "  hint: deploy to production first (conveyor run), then promote"
    )
    assert remote.sha() == main_before


def test_rollback_staging_commits_the_previous_image(
    remote: Remote, github: GitHubApiDouble
) -> None:
    remote.set_staging(SHA_B, DIGEST_B)
    proposal = rollback(make_config(remote, github.url), "staging", env=ENV)
    assert remote.image("main", STAGING) == ImageEntry(
        "hello", "myacr.azurecr.io/hello", SHA_A, DIGEST_A
    )
    assert proposal.previous == ImageEntry("hello", "myacr.azurecr.io/hello", SHA_B, DIGEST_B)
    assert proposal.commit == remote.sha()
    assert github.requests == []


def test_rollback_production_to_a_digest_opens_a_pull_request(
    remote: Remote, github: GitHubApiDouble
) -> None:
    config = make_config(remote, github.url)
    # production ran A, then B (merged promotions)
    for tag, digest in ((SHA_A, DIGEST_A), (SHA_B, DIGEST_B)):
        file = remote.work / PRODUCTION
        git("pull", "--quiet", "origin", "main", cwd=remote.work)
        text = file.read_text()
        file.write_text(
            text + f'images:\n- name: hello\n  newName: myacr.azurecr.io/hello\n  newTag: "{tag}"\n'
            f"  digest: {digest}\n"
            if "images:" not in text
            else text.replace(SHA_A, tag).replace(DIGEST_A, digest)
        )
        git("commit", "--quiet", "-am", f"production {tag[:7]}", cwd=remote.work)
        git("push", "--quiet", "origin", "HEAD:main", cwd=remote.work)
    main_before = remote.sha()

    proposal = rollback(config, "production", to_digest=DIGEST_A, env=ENV)

    assert remote.sha() == main_before
    assert remote.image(BRANCH, PRODUCTION) == ImageEntry(
        "hello", "myacr.azurecr.io/hello", SHA_A, DIGEST_A
    )
    assert proposal.action == "rollback"
    opened = next(r.body for r in github.requests if r.method == "POST")
    assert opened["title"] == f"rollback(production): hello {SHA_A[:12]}"
    assert f"| Replaces | `myacr.azurecr.io/hello:{SHA_B}@{DIGEST_B}` |" in opened["body"]


def test_rollback_further_than_the_history(remote: Remote, github: GitHubApiDouble) -> None:
    main_before = remote.sha()
    with pytest.raises(GitOpsError) as caught:
        rollback(make_config(remote, github.url), "staging", steps=3, env=ENV)
    assert str(caught.value) == (
        "environment 'staging' has only 0 earlier image(s) in the history of "
        "apps/hello/overlays/staging; cannot go back 3\n"
        "  hint: pass a smaller --steps, or --to DIGEST"
    )
    assert remote.sha() == main_before


def test_rollback_to_an_unknown_digest(remote: Remote, github: GitHubApiDouble) -> None:
    remote.set_staging(SHA_B, DIGEST_B)
    with pytest.raises(GitOpsError, match=r"sha256:4{64} is not among the images 'staging' ran"):
        rollback(make_config(remote, github.url), "staging", to_digest="sha256:" + "4" * 64)


def test_rollback_refuses_a_malformed_digest(remote: Remote, github: GitHubApiDouble) -> None:
    with pytest.raises(ConfigError, match="'latest' is not a digest"):
        rollback(make_config(remote, github.url), "staging", to_digest="latest")


def test_only_promotion_branches_are_force_pushed(remote: Remote, tmp_path: Path) -> None:
    with pytest.raises(GitOpsError, match="refusing to force-push 'main'"):
        _push_promotion_branch(Git(str(remote.bare)), tmp_path, "main", "main", "0" * 40)
    assert promotion_branch("production", "hello") == BRANCH
    with pytest.raises(ConfigError, match="cannot be part of a git branch name"):
        promotion_branch("prod uction", "hello")


def test_promotion_carries_the_environments_helm_values_in_the_same_pull_request(
    manifests: Path, tmp_path: Path, github: GitHubApiDouble
) -> None:
    values = "charts/hello/values-production.yaml"
    (manifests / "charts" / "hello").mkdir(parents=True)
    (manifests / values).write_text(
        "# production values\nimage:\n  repository: x/hello\n  tag: v0\n"
    )
    remote = make_remote(manifests, tmp_path)
    config = make_config(remote, github.url)
    assert config.gitops is not None
    production = config.gitops.environments["production"].model_copy(
        update={"helm_values": [HelmValuesConfig(file=values)]}
    )
    gitops = config.gitops.model_copy(
        update={"environments": {**config.gitops.environments, "production": production}}
    )
    main_before = remote.sha()

    promote(config.model_copy(update={"gitops": gitops}), "staging", "production", env=ENV)

    assert remote.sha() == main_before
    assert remote.image(BRANCH, PRODUCTION) == ImageEntry(
        "hello", "myacr.azurecr.io/hello", SHA_A, DIGEST_A
    )
    assert remote.show(BRANCH, values) == (
        "# production values\nimage:\n  repository: myacr.azurecr.io/hello\n"
        f"  tag: {SHA_A}\n  digest: {DIGEST_A}"  # the git helper strips the last newline
    )
    changed = git("--git-dir", str(remote.bare), "diff", "--name-only", "main", BRANCH)
    assert sorted(changed.splitlines()) == sorted([PRODUCTION, values])


def test_rollback_s_hint_names_each_earlier_digest_once(
    remote: Remote, github: GitHubApiDouble
) -> None:
    # staging went back and forth: B, A, B (each digest ran twice)
    remote.set_staging(SHA_B, DIGEST_B)
    remote.set_staging(SHA_A, DIGEST_A)
    remote.set_staging(SHA_B, DIGEST_B)
    unknown = "sha256:" + "9" * 64
    with pytest.raises(GitOpsError) as caught:
        rollback(make_config(remote, github.url), "staging", to_digest=unknown, env=ENV)
    assert caught.value.hint == f"earlier digests: {DIGEST_A[:19]}, {DIGEST_B[:19]}"
