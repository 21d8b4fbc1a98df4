"""Policy rules: registry allow-list, mutable tags, required digests."""

from __future__ import annotations

import pytest

from conveyor.config.models import PolicyConfig
from conveyor.errors import InvalidReferenceError, PolicyError
from conveyor.policy.reference import parse
from conveyor.policy.rules import Rule, Violation, check_reference, enforce, raise_for

DIGEST = "sha256:" + "b" * 64
SHA = "3f2a9c1d" * 5
POLICY = PolicyConfig(allowed_registries=[r"^myacr\.azurecr\.io/.+$"], mutable_tags=["stable"])


def rules(image: str, policy: PolicyConfig = POLICY) -> list[Rule]:
    return [v.rule for v in check_reference(image, policy)]


def test_pinned_sha_tag_in_allowed_registry_passes() -> None:
    assert check_reference(f"myacr.azurecr.io/hello:{SHA}@{DIGEST}", POLICY) == []
    assert enforce(f"myacr.azurecr.io/hello:{SHA}@{DIGEST}", POLICY).tag == SHA


def test_registry_must_match_the_whole_name() -> None:
    assert rules(f"docker.io/library/nginx:{SHA}@{DIGEST}") == [Rule.REGISTRY_NOT_ALLOWED]
    # a prefix or suffix match is not enough: the pattern is matched against all of it
    loose = PolicyConfig(allowed_registries=[r"myacr\.azurecr\.io/"])
    assert rules(f"myacr.azurecr.io/hello:{SHA}@{DIGEST}", loose) == [Rule.REGISTRY_NOT_ALLOWED]
    assert rules(f"evil.io/myacr.azurecr.io/x:{SHA}@{DIGEST}") == [Rule.REGISTRY_NOT_ALLOWED]
    # official images are matched in their normalised form
    official = PolicyConfig(allowed_registries=[r"docker\.io/library/.+"])
    assert rules(f"nginx:{SHA}@{DIGEST}", official) == []


def test_empty_allow_list_allows_every_registry() -> None:
    assert rules(f"quay.io/x/y:{SHA}@{DIGEST}", PolicyConfig()) == []


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("myacr.azurecr.io/hello:latest", "tag 'latest' is mutable"),
        ("myacr.azurecr.io/hello:stable", "tag 'stable' is mutable"),
        ("myacr.azurecr.io/hello", "no tag and no digest means the mutable 'latest'"),
    ],
)
def test_mutable_tags_are_refused(image: str, message: str) -> None:
    found = check_reference(image, PolicyConfig(mutable_tags=["stable"], require_digest=False))
    assert found == [Violation(image, Rule.MUTABLE_TAG, message)]


def test_latest_is_refused_even_when_not_configured_and_even_with_digest() -> None:
    policy = PolicyConfig(mutable_tags=[], require_digest=False)
    assert rules(f"x.io/app:latest@{DIGEST}", policy) == [Rule.MUTABLE_TAG]


def test_digest_only_reference_is_immutable() -> None:
    assert rules(f"myacr.azurecr.io/hello@{DIGEST}") == []


def test_digest_required() -> None:
    assert rules(f"myacr.azurecr.io/hello:{SHA}") == [Rule.DIGEST_REQUIRED]
    assert rules(f"myacr.azurecr.io/hello:{SHA}", PolicyConfig(require_digest=False)) == []


def test_every_violation_is_reported_with_where() -> None:
    found = check_reference("nginx:latest", POLICY, where="apps/x (Deployment/web, container app)")
    assert [v.rule for v in found] == [
        Rule.REGISTRY_NOT_ALLOWED,
        Rule.MUTABLE_TAG,
        Rule.DIGEST_REQUIRED,
    ]
    assert {v.where for v in found} == {"apps/x (Deployment/web, container app)"}
    assert found[0].message == (
        r"docker.io/library/nginx matches none of the allowed registries (^myacr\.azurecr\.io/.+$)"
    )


def test_invalid_text_is_a_violation_not_a_crash() -> None:
    found = check_reference("Bad Image", POLICY)
    assert found == [
        Violation(
            "Bad Image",
            Rule.INVALID_REFERENCE,
            "not a valid image reference: a reference contains no whitespace",
        )
    ]
    with pytest.raises(InvalidReferenceError):
        enforce("Bad Image", POLICY)


def test_raise_for_names_image_rule_and_hint() -> None:
    with pytest.raises(PolicyError) as caught:
        enforce("myacr.azurecr.io/hello:latest", POLICY)
    assert str(caught.value) == (
        "image 'myacr.azurecr.io/hello:latest' refused: mutable-tag: tag 'latest' is mutable\n"
        "  hint: tag images with the full git SHA of their source and pin the digest"
    )
    raise_for([])  # nothing to raise
    with pytest.raises(PolicyError, match=r"\(in k.yaml\)"):
        raise_for(check_reference("x.io/a:latest", POLICY, where="k.yaml"))
    assert enforce(parse(f"myacr.azurecr.io/a@{DIGEST}"), POLICY).digest == DIGEST
