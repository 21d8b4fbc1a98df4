"""The checks in rules.py catch what they are for (each test feeds one violation)."""

from __future__ import annotations

from .rules import (
    gitlab_image_problems,
    gitlab_promotion_problems,
    gitlab_rule_problems,
    id_token_problems,
    inline_secret_problems,
    load_yaml,
    missing_version_comments,
    permission_problems,
    promotion_problems,
    unpinned_uses,
)

GOOD_JOB = """
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd # v6.0.2
      - uses: dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77 # v8.4.1
"""


def test_shas_with_version_comments_pass() -> None:
    assert unpinned_uses(load_yaml(GOOD_JOB)) == []
    assert missing_version_comments(GOOD_JOB) == []


def test_a_sha_without_the_release_it_is_is_reported() -> None:
    text = GOOD_JOB.replace(" # v8.4.1", "").replace("# v6.0.2", "# main")
    assert missing_version_comments(text) == [
        "line 9: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd"
        " has no '# vX.Y.Z' comment",
        "line 10: dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77"
        " has no '# vX.Y.Z' comment",
    ]


def test_only_the_own_action_at_this_release_may_use_a_tag() -> None:
    action = load_yaml(
        """
runs:
  using: composite
  steps:
    - uses: conveyor-ci/conveyor@v0.1.0
    - uses: conveyor-ci/conveyor@v0.0.9
    - uses: actions/setup-python@v6
"""
    )
    assert unpinned_uses(action, self_ref="v0.1.0") == [
        "runs.steps[1]: conveyor-ci/conveyor@v0.0.9 is not pinned to a commit SHA",
        "runs.steps[2]: actions/setup-python@v6 is not pinned to a commit SHA",
    ]
    assert len(unpinned_uses(action)) == 3


def test_branch_refs_and_missing_refs_are_unpinned() -> None:
    workflow = load_yaml(
        """
jobs:
  a:
    uses: acme/workflows/.github/workflows/x.yml@main
  b:
    steps:
      - uses: actions/checkout@master
      - uses: some/action
"""
    )
    assert unpinned_uses(workflow) == [
        "jobs.a: acme/workflows/.github/workflows/x.yml@main is not pinned to a commit SHA",
        "jobs.b.steps[0]: actions/checkout@master is not pinned to a commit SHA",
        "jobs.b.steps[1]: some/action is not pinned to a commit SHA",
    ]


def test_missing_or_wide_permissions_are_reported() -> None:
    workflow = load_yaml(
        """
permissions: write-all
jobs:
  a:
    runs-on: ubuntu-latest
  b:
    permissions:
      contents: write
"""
    )
    assert permission_problems(workflow) == [
        "top-level permissions 'write-all' are wider than contents: read",
        "jobs.a: no explicit permissions mapping (None)",
        "jobs.b: permission contents: write is not allowed",
    ]
    assert permission_problems({"jobs": {}}) == [
        "no top-level permissions: the token would get the repository default"
    ]


def test_inline_secrets_are_reported() -> None:
    document = load_yaml(
        """
jobs:
  a:
    env:
      GITOPS_TOKEN: hunter2
      REGISTRY_PASSWORD: ${{ secrets.REGISTRY_PASSWORD }}
      OTHER: ghp_abcdefghijklmnopqrstuvwxyz0123
"""
    )
    assert inline_secret_problems(document) == [
        "jobs.a.env.GITOPS_TOKEN: GITOPS_TOKEN is set inline instead of from secrets or variables",
        "jobs.a.env.OTHER: the value looks like a secret",
    ]


def test_id_token_without_login_and_login_with_a_secret_are_reported() -> None:
    workflow = load_yaml(
        """
jobs:
  a:
    permissions:
      id-token: write
    steps:
      - run: echo hi
  b:
    permissions:
      contents: read
    steps:
      - uses: azure/login@v3
        with:
          creds: ${{ secrets.AZURE_CREDENTIALS }}
"""
    )
    assert id_token_problems(workflow) == [
        "jobs.a: id-token: write but no OIDC login happens there",
        "jobs.b: azure/login is given a client secret",
        "jobs.b: azure/login without id-token: write",
    ]


def test_a_promotion_that_pushes_outside_production_is_reported() -> None:
    workflow = load_yaml(
        """
jobs:
  promote:
    environment: staging
    permissions:
      contents: write
    steps:
      - run: |
          conveyor promote --from staging --to prod
          git push origin main
"""
    )
    assert promotion_problems(workflow) == [
        "jobs.promote: not bound to environment: production ('staging')",
        "jobs.promote: does not promote --from staging --to production",
        "jobs.promote: pushes with git instead of opening a pull request",
        "jobs.promote: contents permission is not read-only",
    ]
    assert promotion_problems({"jobs": {}}) == ["no job runs 'conveyor promote'"]


def test_gitlab_latest_and_untagged_images_are_reported() -> None:
    document = load_yaml(
        """
job:
  image: docker:latest
  services: [docker]
ok:
  image: registry.example.com:5000/tools/python:3.12
"""
    )
    assert gitlab_image_problems(document) == [
        "job: image docker:latest is not pinned to a tag",
        "job: image docker is not pinned to a tag",
    ]


def test_gitlab_promotion_on_any_branch_automatically_is_reported() -> None:
    job = load_yaml(
        """
environment: staging
id_tokens:
  T: {aud: x}
rules:
  - if: $CI_COMMIT_BRANCH
script:
  - conveyor promote --from staging --to production
  - git push origin HEAD:main
"""
    )
    problems = gitlab_promotion_problems("promote", job)
    assert problems == [
        "promote: not bound to environment production ('staging')",
        "promote: rules [{'if': '$CI_COMMIT_BRANCH'}] are not manual-on-the-default-branch only",
        "promote: pushes with git instead of opening a merge request",
        "promote: asks for an OIDC token it does not use",
    ]


def test_gitlab_promotion_that_may_fail_is_reported() -> None:
    job = load_yaml(
        """
environment: {name: production}
rules:
  - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    when: never
  - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
    when: manual
    allow_failure: true
script:
  - conveyor promote --from staging --to production
"""
    )
    assert gitlab_promotion_problems("promote", job) == [
        "promote: allow_failure: true turns a failed promotion into a warning"
    ]


def test_gitlab_rules_comparing_anything_but_a_variable_on_the_left_are_reported() -> None:
    document = {
        "fine": {
            "rules": [
                {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'},
                {"if": "$CI_COMMIT_BRANCH && $CI_COMMIT_BRANCH != $CI_DEFAULT_BRANCH"},
                {"if": '($A == "x" || $B =~ /^v/) && $C'},
                {"when": "never"},
            ]
        },
        "quoted": {"rules": [{"if": '"true" == "true"', "when": "never"}]},
        "reversed": {"rules": [{"if": '$A == "x" && "y" != $B'}]},
    }
    assert gitlab_rule_problems(document) == [
        'quoted: \'"true" == "true"\' compares "true" on the left',
        'reversed: \'$A == "x" && "y" != $B\' compares "y" on the left',
    ]
