"""Image references parse and normalise like docker/distribution."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.errors import InvalidReferenceError
from conveyor.policy.reference import ImageReference, format_reference, parse

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ImageReference("docker.io", "library/nginx")),
        ("nginx:1.27", ImageReference("docker.io", "library/nginx", "1.27")),
        ("acme/app:v1", ImageReference("docker.io", "acme/app", "v1")),
        ("index.docker.io/acme/app", ImageReference("docker.io", "acme/app")),
        ("docker.io/nginx", ImageReference("docker.io", "library/nginx")),
        ("localhost/app", ImageReference("localhost", "app")),
        ("localhost:5000/app:v2", ImageReference("localhost:5000", "app", "v2")),
        ("127.0.0.1:5000/team/app", ImageReference("127.0.0.1:5000", "team/app")),
        ("myacr.azurecr.io/hello:abc", ImageReference("myacr.azurecr.io", "hello", "abc")),
        ("Registry.Example/app", ImageReference("Registry.Example", "app")),
        ("[::1]:5000/app", ImageReference("[::1]:5000", "app")),
        (f"ghcr.io/acme/app@{DIGEST}", ImageReference("ghcr.io", "acme/app", None, DIGEST)),
        (
            f"ghcr.io/acme/app:v1@{DIGEST}",
            ImageReference("ghcr.io", "acme/app", "v1", DIGEST),
        ),
        ("a/b__c/d-e--f.g:T_1.x-y", ImageReference("docker.io", "a/b__c/d-e--f.g", "T_1.x-y")),
    ],
)
def test_parse_normalises(text: str, expected: ImageReference) -> None:
    assert parse(text) == expected


def test_format_writes_full_form_and_familiar_short_form() -> None:
    ref = parse(f"nginx:1.27@{DIGEST}")
    assert ref.format() == f"docker.io/library/nginx:1.27@{DIGEST}"
    assert format_reference(ref) == ref.format() == str(ref)
    assert ref.familiar() == f"nginx:1.27@{DIGEST}"
    assert parse("acme/app").familiar() == "acme/app"
    assert parse("ghcr.io/acme/app:v1").familiar() == "ghcr.io/acme/app:v1"
    assert ref.name == "docker.io/library/nginx"
    assert ref.with_digest(None).format() == "docker.io/library/nginx:1.27"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the reference is empty"),
        ("nginx latest", "a reference contains no whitespace"),
        ("Nginx", "the repository name must be lowercase"),
        ("acme/App:v1", "the repository name must be lowercase"),
        ("nginx:", "tag '' must be 1-128"),
        ("nginx:-x", "tag '-x' must be 1-128"),
        ("nginx:" + "a" * 129, "must be 1-128"),
        ("nginx@sha256:abc", "digest 'sha256:abc' is not 'algorithm:hex'"),
        ("nginx@sha256:" + "A" * 64, "is not sha256: followed by 64 lowercase hex digits"),
        ("nginx@md5", "is not 'algorithm:hex'"),
        ("a" * 64, "is an image ID, not a reference"),
        ("-bad.io/app", "registry '-bad.io' is not a host[:port]"),
        ("ghcr.io/acme//app", "repository 'acme//app' must be"),
        ("ghcr.io/acme/app_", "repository 'acme/app_' must be"),
        (":v1", "the repository name is empty"),
        ("x.io/" + "a" * 260, "longer than 255"),
    ],
)
def test_invalid_references_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse(text)
    assert problem in str(caught.value)
    assert f"image {text!r} refused: not a valid image reference" in str(caught.value)
    assert "hint: write it as" in str(caught.value)


_component = st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,6}){0,2}", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)


@given(
    registry=st.sampled_from(["docker.io", "ghcr.io", "localhost:5000", "my-acr.azurecr.io"]),
    path=st.lists(_component, min_size=2, max_size=3).map("/".join),
    tag=st.none() | _tag,
    digest=st.none() | _digest,
)
def test_format_then_parse_is_identity(
    registry: str, path: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageReference(registry, path, tag, digest)
    assert parse(ref.format()) == ref
    assert parse(ref.familiar()) == ref
