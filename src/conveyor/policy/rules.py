"""Pure policy rules for one image reference, against :class:`PolicyConfig`.

API:
    ``check_reference(image, policy) -> list[Violation]`` returns every rule the
    reference breaks (empty when it passes); ``enforce(image, policy)`` returns
    the parsed reference or raises :class:`PolicyError` for the first violation.

Rules:
    * ``invalid-reference``: the text is not a reference at all.
    * ``registry-not-allowed``: ``registry/repository`` fully matches none of
      ``policy.allowed_registries`` (an empty list allows every registry).
    * ``mutable-tag``: the tag is ``latest`` or one of ``policy.mutable_tags``,
      or there is neither a tag nor a digest (which means ``latest``).
    * ``digest-required``: ``policy.require_digest`` and no ``@digest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from conveyor.config.models import PolicyConfig
from conveyor.errors import InvalidReferenceError, PolicyError
from conveyor.policy.reference import ImageReference, parse


class Rule(StrEnum):
    INVALID_REFERENCE = "invalid-reference"
    REGISTRY_NOT_ALLOWED = "registry-not-allowed"
    MUTABLE_TAG = "mutable-tag"
    DIGEST_REQUIRED = "digest-required"


_HINTS: dict[Rule, str] = {
    Rule.INVALID_REFERENCE: "write it as [registry[:port]/]repository[:tag][@sha256:<64 hex>]",
    Rule.REGISTRY_NOT_ALLOWED: "push the image to an allowed registry or extend "
    "policy.allowed_registries",
    Rule.MUTABLE_TAG: "tag images with the full git SHA of their source and pin the digest",
    Rule.DIGEST_REQUIRED: "pin the pushed digest: NAME:TAG@sha256:<digest>",
}


@dataclass(frozen=True)
class Violation:
    """One broken rule.

    Attributes:
        image: The image text as written.
        rule: Which rule.
        message: Why, naming the value.
        where: Where the image was found (file, resource, container), "" when unknown.
    """

    image: str
    rule: Rule
    message: str
    where: str = ""

    @property
    def hint(self) -> str:
        """What to do about it."""
        return _HINTS[self.rule]


def check_reference(
    image: str | ImageReference, policy: PolicyConfig, *, where: str = ""
) -> list[Violation]:
    """Every rule ``image`` breaks under ``policy``.

    Args:
        image: The reference text (or an already parsed reference).
        policy: The policy section of the configuration.
        where: A location to carry in each violation.

    Returns:
        The violations, in rule order; empty when the image passes.
    """
    text = image if isinstance(image, str) else image.format()
    if isinstance(image, str):
        try:
            ref = parse(image)
        except InvalidReferenceError as error:
            return [Violation(text, Rule.INVALID_REFERENCE, error.rule, where)]
    else:
        ref = image

    found: list[Violation] = []
    if policy.allowed_registries and not any(
        re.fullmatch(pattern, ref.name) for pattern in policy.allowed_registries
    ):
        found.append(
            Violation(
                text,
                Rule.REGISTRY_NOT_ALLOWED,
                f"{ref.name} matches none of the allowed registries "
                f"({', '.join(policy.allowed_registries)})",
                where,
            )
        )
    mutable = {"latest", *policy.mutable_tags}
    if ref.tag is not None and ref.tag in mutable:
        found.append(Violation(text, Rule.MUTABLE_TAG, f"tag {ref.tag!r} is mutable", where))
    elif ref.tag is None and ref.digest is None:
        found.append(
            Violation(
                text, Rule.MUTABLE_TAG, "no tag and no digest means the mutable 'latest'", where
            )
        )
    if policy.require_digest and ref.digest is None:
        found.append(
            Violation(
                text, Rule.DIGEST_REQUIRED, "no digest, and policy.require_digest is on", where
            )
        )
    return found


def raise_for(violations: list[Violation]) -> None:
    """Raise :class:`PolicyError` for the first violation, if any.

    Raises:
        PolicyError: naming the image, the rule and what to do.
    """
    if violations:
        first = violations[0]
        rule = f"{first.rule}: {first.message}"
        if first.where:
            rule = f"{rule} (in {first.where})"
        raise PolicyError(first.image, rule, hint=first.hint)


def enforce(image: str | ImageReference, policy: PolicyConfig) -> ImageReference:
    """The parsed reference when it passes every rule.

    Raises:
        PolicyError: the first violated rule (``InvalidReferenceError`` for bad text).
    """
    ref = parse(image) if isinstance(image, str) else image
    raise_for(check_reference(ref, policy))
    return ref


def check_publish_address(address: str, policy: PolicyConfig) -> list[Violation]:
    """The rules for an address about to be pushed: a digest does not exist yet."""
    return check_reference(address, policy.model_copy(update={"require_digest": False}))
