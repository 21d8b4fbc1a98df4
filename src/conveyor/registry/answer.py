"""What a registry's answer means, decided from its status and body alone (pure).

The one rule that keeps a pushed tag from moving: only the registry saying
"this manifest is unknown" (a 404 whose body, if any, is the distribution
error ``MANIFEST_UNKNOWN``/``NAME_UNKNOWN``/``NOT_FOUND``) means *absent*.
Credentials refused (401/403), a registry that cannot serve (5xx, 408, 429)
and anything else unexpected are each their own verdict, and none of them
lets a push through.  Nothing here looks at an error's text: the address in
a message contains the commit SHA, and a SHA may well contain ``404``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
"""The ``Accept`` header of a manifest request: indexes first, as podman asks."""

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
ABSENT_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "NOT_FOUND"})
"""Distribution error codes of a missing manifest or repository (``NOT_FOUND``: Harbor)."""

_BUSY = frozenset({408, 429})


class Verdict(Enum):
    """What an answer to a manifest request says about the tag."""

    FOUND = "found"
    ABSENT = "absent"
    CREDENTIALS = "credentials"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Answer:
    """A classified answer: the verdict and, for errors, what the registry said.

    Attributes:
        verdict: What the answer means.
        status: The HTTP status.
        detail: The registry's error codes and messages (or the status text),
            short, for an error message; never a header or a token.
    """

    verdict: Verdict
    status: int
    detail: str = ""


def error_codes(body: bytes) -> list[tuple[str, str]]:
    """The ``(code, message)`` pairs of a distribution error body; empty when it is none."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        (str(item.get("code", "")), str(item.get("message", "")))
        for item in errors
        if isinstance(item, dict)
    ]


def _detail(status: int, body: bytes) -> str:
    codes = error_codes(body)
    if codes:
        return "; ".join(f"{code}: {message}" if message else code for code, message in codes)[:300]
    return f"HTTP {status}"


def classify(status: int, body: bytes = b"") -> Answer:
    """The verdict of the registry's answer to ``GET/HEAD /v2/<repo>/manifests/<ref>``.

    Args:
        status: The HTTP status the registry answered with.
        body: The response body (empty for ``HEAD``).

    Returns:
        ``FOUND`` for 200; ``ABSENT`` for a 404 with an empty body or a
        distribution error naming only a missing manifest or repository;
        ``CREDENTIALS`` for 401/403; ``UNREACHABLE`` for 5xx, 408, 429;
        ``UNKNOWN`` otherwise (a 404 with another body: a proxy's page, a
        wrong path).
    """
    detail = _detail(status, body)
    if status == 200:
        return Answer(Verdict.FOUND, status)
    if status == 404:
        codes = {code for code, _ in error_codes(body)}
        if (not body.strip() or codes) and codes <= ABSENT_CODES:
            return Answer(Verdict.ABSENT, status, detail)
        return Answer(Verdict.UNKNOWN, status, detail)
    if status in (401, 403):
        return Answer(Verdict.CREDENTIALS, status, detail)
    if status >= 500 or status in _BUSY:
        return Answer(Verdict.UNREACHABLE, status, detail)
    return Answer(Verdict.UNKNOWN, status, detail)


# -- challenges ------------------------------------------------------------------

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """A ``WWW-Authenticate`` challenge: ``Bearer realm=...,service=...,scope=...`` or Basic."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header; ``None`` when there is none."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        match.group(1).lower(): (
            match.group(2).replace('\\"', '"') if match.group(2) is not None else match.group(3)
        )
        for match in _PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


# -- manifests -------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry served it.

    Attributes:
        digest: ``sha256:`` of the bytes served (what the tag points at).
        media_type: Its media type (from the body, else the ``Content-Type``).
        config: The config blob's digest (an image manifest), else ``None``.
        platforms: ``(os/architecture[/variant], digest)`` of an index's entries.
    """

    digest: str
    media_type: str
    config: str | None = None
    platforms: Sequence[tuple[str, str]] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class ManifestFormatError(ValueError):
    """The body is not a manifest this client understands."""


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def read_manifest(body: bytes, content_type: str = "") -> Manifest:
    """Parse a manifest body.

    Raises:
        ManifestFormatError: it is not JSON, or has neither a config nor manifests.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestFormatError(f"the manifest is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestFormatError("the manifest is not a JSON object")
    media_type = str(data.get("mediaType") or content_type.split(";", maxsplit=1)[0].strip())
    digest = digest_of(body)
    entries = data.get("manifests")
    if isinstance(entries, list):
        platforms = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
                raise ManifestFormatError("an index entry has no digest")
            platform = entry.get("platform") or {}
            name = "/".join(
                str(platform[key]) for key in ("os", "architecture", "variant") if platform.get(key)
            )
            platforms.append((name, str(entry["digest"])))
        return Manifest(digest, media_type or OCI_INDEX, platforms=tuple(platforms))
    config = data.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise ManifestFormatError("the manifest has neither a config nor manifests")
    return Manifest(digest, media_type or OCI_MANIFEST, config=str(config["digest"]))


def pick_platform(index: Manifest, wanted: str) -> str | None:
    """The digest of the entry for ``wanted`` (``os/arch``), else the first entry's."""
    for name, digest in index.platforms:
        if name == wanted or name.startswith(f"{wanted}/"):
            return digest
    return index.platforms[0][1] if index.platforms else None


def config_labels(body: bytes) -> dict[str, str]:
    """The labels of an image config blob (``config.Labels``); empty when it has none.

    Raises:
        ManifestFormatError: it is not a JSON object or its labels are not a mapping.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestFormatError(f"the image config is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestFormatError("the image config is not a JSON object")
    labels = (data.get("config") or {}).get("Labels") or {}
    if not isinstance(labels, dict):
        raise ManifestFormatError("the image config's Labels are not a mapping")
    return {str(key): str(value) for key, value in labels.items()}
