"""Image references parsed the way docker/distribution does.

API:
    ``parse(text) -> ImageReference`` normalises a reference: ``nginx`` becomes
    ``docker.io/library/nginx``, a first path component with a ``.`` or ``:``
    (or ``localhost``) is the registry (port included), ``@algo:hex`` is the
    digest.  ``ImageReference.format()`` writes it back in full form;
    ``ImageReference.name`` is ``registry/repository``.

A text that is not a reference raises :class:`InvalidReferenceError` naming
the text and the part that is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.errors import InvalidReferenceError

DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
NAME_TOTAL_LENGTH_MAX = 255

# The grammar of distribution/reference (regexp.go), piece by piece.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_SHA256_RE = re.compile(r"sha256:[0-9a-f]{64}")
_ANCHORED_ID = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True, order=True)
class ImageReference:
    """A normalised image reference.

    Attributes:
        registry: Host (with port) of the registry, ``docker.io`` by default.
        repository: Path inside the registry, ``library/NAME`` for official images.
        tag: The tag, or ``None`` when the reference has none.
        digest: ``algorithm:hex``, or ``None``.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``: what registry rules are matched against."""
        return f"{self.registry}/{self.repository}"

    def format(self) -> str:
        """The full reference text, ``registry/repository[:tag][@digest]``."""
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """The short form a person types: ``nginx:1.27`` for ``docker.io/library/nginx:1.27``."""
        name = self.name
        first = self.repository.split("/", 1)[0]
        if self.registry == DEFAULT_REGISTRY and _split_domain(self.repository)[0] != first:
            # dropping docker.io is only safe when the rest does not read as a registry
            name = self.repository
            if name.startswith(f"{OFFICIAL_NAMESPACE}/") and name.count("/") == 1:
                name = name[len(OFFICIAL_NAMESPACE) + 1 :]
        text = name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_digest(self, digest: str | None) -> ImageReference:
        """The same reference pinned to ``digest`` (``None`` drops the pin)."""
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        return self.format()


def _split_domain(name: str) -> tuple[str, str]:
    """distribution's ``splitDockerDomain``: which part of a name is the registry."""
    slash = name.find("/")
    first = name[:slash]
    if slash == -1 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_REGISTRY, name
    else:
        domain, remainder = first, name[slash + 1 :]
    if domain == LEGACY_DEFAULT_REGISTRY:
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = f"{OFFICIAL_NAMESPACE}/{remainder}"
    return domain, remainder


def _check_digest(text: str, digest: str) -> None:
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidReferenceError(text, f"digest {digest!r} is not 'algorithm:hex'")
    if digest.startswith("sha256:") and not _SHA256_RE.fullmatch(digest):
        raise InvalidReferenceError(
            text, f"digest {digest!r} is not sha256: followed by 64 lowercase hex digits"
        )


def parse(text: str) -> ImageReference:
    """Parse and normalise an image reference.

    Args:
        text: A reference such as ``nginx``, ``localhost:5000/app:v1`` or
            ``ghcr.io/acme/app:3f2a...@sha256:...``.

    Returns:
        The normalised reference.

    Raises:
        InvalidReferenceError: ``text`` is not a valid reference.
    """
    if not text:
        raise InvalidReferenceError(text, "the reference is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReferenceError(text, "a reference contains no whitespace")
    if _ANCHORED_ID.fullmatch(text):
        raise InvalidReferenceError(
            text, "a 64-character hexadecimal string is an image ID, not a reference"
        )

    remainder, at, digest = text.partition("@")
    if at:
        _check_digest(text, digest)

    tag: str | None = None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReferenceError(
                text, f"tag {tag!r} must be 1-128 of letters, digits, '_', '.', '-' (not first)"
            )

    if not remainder:
        raise InvalidReferenceError(text, "the repository name is empty")
    domain, path = _split_domain(remainder)
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReferenceError(text, f"registry {domain!r} is not a host[:port]")
    if path.lower() != path:
        raise InvalidReferenceError(text, "the repository name must be lowercase")
    if not _PATH_RE.fullmatch(path):
        raise InvalidReferenceError(
            text,
            f"repository {path!r} must be '/'-separated lowercase components "
            "of letters and digits joined by '.', '_', '__' or '-'",
        )
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(
            text, f"the name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    return ImageReference(domain, path, tag, digest if at else None)


def format_reference(ref: ImageReference) -> str:
    """The full text of ``ref`` (same as ``ref.format()``)."""
    return ref.format()
