"""The verdict of a registry's answer comes from its status and error codes, never its text."""

from __future__ import annotations

import json

import pytest

from conveyor.registry.answer import (
    DOCKER_LIST,
    OCI_MANIFEST,
    Challenge,
    ManifestFormatError,
    Verdict,
    classify,
    config_labels,
    digest_of,
    parse_challenge,
    pick_platform,
    read_manifest,
)


def errors(*codes: str) -> bytes:
    return json.dumps(
        {"errors": [{"code": c, "message": f"{c.lower()} here"} for c in codes]}
    ).encode()


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, b"{}", Verdict.FOUND),
        (404, errors("MANIFEST_UNKNOWN"), Verdict.ABSENT),
        (404, errors("NAME_UNKNOWN"), Verdict.ABSENT),
        (404, errors("NOT_FOUND"), Verdict.ABSENT),  # Harbor
        (404, b"", Verdict.ABSENT),  # a HEAD has no body
        (404, b"<html>404 page not found</html>", Verdict.UNKNOWN),  # a proxy, a wrong path
        (404, errors("MANIFEST_UNKNOWN", "DENIED"), Verdict.UNKNOWN),
        (401, errors("UNAUTHORIZED"), Verdict.CREDENTIALS),
        (403, errors("DENIED"), Verdict.CREDENTIALS),
        (500, b"", Verdict.UNREACHABLE),
        (502, b"bad gateway", Verdict.UNREACHABLE),
        (503, errors("UNAVAILABLE"), Verdict.UNREACHABLE),
        (429, errors("TOOMANYREQUESTS"), Verdict.UNREACHABLE),
        (408, b"", Verdict.UNREACHABLE),
        (400, errors("MANIFEST_INVALID"), Verdict.UNKNOWN),
        (302, b"", Verdict.UNKNOWN),
        (405, b"", Verdict.UNKNOWN),
    ],
)
def test_classify(status: int, body: bytes, verdict: Verdict) -> None:
    assert classify(status, body).verdict is verdict


def test_a_500_whose_text_says_404_and_not_found_is_not_absent() -> None:
    # what skopeo's stderr looked like for a SHA containing 404: the address is in the text
    body = json.dumps(
        {"errors": [{"code": "UNKNOWN", "message": "127.0.0.1/hello:ab404f not found (404)"}]}
    ).encode()
    answer = classify(500, body)
    assert answer.verdict is Verdict.UNREACHABLE
    assert answer.detail.startswith("UNKNOWN")


def test_detail_names_codes_and_messages_or_the_status() -> None:
    assert classify(401, errors("UNAUTHORIZED")).detail == "UNAUTHORIZED: unauthorized here"
    assert classify(500, b"oops").detail == "HTTP 500"


@pytest.mark.parametrize(
    ("header", "challenge"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/python:pull"',
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:library/python:pull",
                },
            ),
        ),
        ('Basic realm="conveyor-test"', Challenge("basic", {"realm": "conveyor-test"})),
        (
            "Bearer realm=https://x.io/oauth2/token, service=x.io",
            Challenge("bearer", {"realm": "https://x.io/oauth2/token", "service": "x.io"}),
        ),
    ],
)
def test_parse_challenge(header: str, challenge: Challenge) -> None:
    assert parse_challenge(header) == challenge


def test_no_challenge() -> None:
    assert parse_challenge("") is None


def test_read_an_image_manifest_and_an_index() -> None:
    config = "sha256:" + "c" * 64
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": config}})
    manifest = read_manifest(body.encode())
    assert manifest.config == config
    assert manifest.digest == digest_of(body.encode())
    assert not manifest.is_index

    amd, arm = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    index = read_manifest(
        json.dumps(
            {
                "manifests": [
                    {
                        "digest": arm,
                        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                    },
                    {"digest": amd, "platform": {"os": "linux", "architecture": "amd64"}},
                ]
            }
        ).encode(),
        f"{DOCKER_LIST}; charset=utf-8",
    )
    assert index.is_index
    assert index.platforms == (("linux/arm64/v8", arm), ("linux/amd64", amd))
    assert pick_platform(index, "linux/amd64") == amd
    assert pick_platform(index, "linux/arm64") == arm
    assert pick_platform(index, "linux/s390x") == arm  # the first, as skopeo falls back


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"config": {}}', b'{"manifests": [{"size": 1}]}']
)
def test_a_body_that_is_no_manifest(body: bytes) -> None:
    with pytest.raises(ManifestFormatError):
        read_manifest(body)


def test_config_labels() -> None:
    assert config_labels(b'{"config": {"Labels": {"a": "b"}}}') == {"a": "b"}
    assert config_labels(b'{"architecture": "amd64"}') == {}
    with pytest.raises(ManifestFormatError):
        config_labels(b'{"config": {"Labels": ["a"]}}')
