"""What an HTTP answer must show to prove that a version is served.

A service proves its version in its own way: Conveyor's example serves
``{"version": "<sha>"}`` on ``/version``, another service puts the commit in
a nested JSON field, in an HTML footer, or not at all.  A :class:`Contract`
says which answer counts, independent of the SHA it is checked against:

- ``status``: the exact status expected; ``None`` accepts any 2xx;
- ``body_contains``: a template (``{sha}``, ``{short_sha}``) the body must contain;
- ``json_path`` + ``json_equals``: the value at a dotted path of the JSON
  body must equal a template;
- ``prove_version = False``: the status alone is the proof (a service with
  no version endpoint);
- none of these: the default, a JSON ``version`` field equal to or
  containing the SHA, or any other body containing it.

Pure: :meth:`Contract.check` takes a status and a body and returns why the
answer does not count, or ``None``.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

TEMPLATE_FIELDS = ("sha", "short_sha")
SHORT_SHA = 7


def template_problem(template: str) -> str | None:
    """Why ``template`` cannot be rendered with the fields a smoke contract knows.

    Returns:
        ``None`` when it renders; otherwise a message naming the bad part.
    """
    try:
        parsed = list(string.Formatter().parse(template))
        fields = [field for _, field, _, _ in parsed if field is not None]
    except ValueError as exc:
        return f"{template!r} is not a template: {exc}"
    for field in fields:
        if field not in TEMPLATE_FIELDS:
            known = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
            return f"{template!r} uses {{{field}}}; the fields are {known}"
    return None


def render(template: str, sha: str) -> str:
    """``template`` with ``{sha}`` and ``{short_sha}`` filled in."""
    return template.format(sha=sha, short_sha=sha[:SHORT_SHA])


def served_version(body: str) -> str:
    """The version a response body reports by default.

    Returns:
        The JSON object's ``version`` field as text when there is one, otherwise
        the whole body without surrounding whitespace.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()
    if isinstance(data, dict) and data.get("version") is not None:
        return str(data["version"])
    return body.strip()


def _at_path(data: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return False, None
    return True, data


@dataclass(frozen=True)
class Contract:
    """Which answer proves the version; see the module docstring."""

    status: int | None = None
    body_contains: str | None = None
    json_path: tuple[str, ...] = ()
    json_equals: str | None = None
    prove_version: bool = True

    def check(self, status: int, body: str, sha: str) -> str | None:
        """Why an answer with ``status`` and ``body`` does not prove ``sha``.

        Returns:
            ``None`` when it does; otherwise a short reason for the message.
        """
        if self.status is None:
            if not 200 <= status < 300:
                return "expected 2xx"
        elif status != self.status:
            return f"expected {self.status}"
        if not self.prove_version:
            return None
        if self.json_equals is not None:
            return self._check_json(body, render(self.json_equals, sha))
        if self.body_contains is not None:
            wanted = render(self.body_contains, sha)
            return None if wanted in body else f"body does not contain {wanted!r}"
        return None if sha in served_version(body) else f"version is not {sha!r}"

    def _check_json(self, body: str, wanted: str) -> str | None:
        shown = ".".join(self.json_path)
        try:
            data = json.loads(body)
        except ValueError:
            return f"body is not JSON (expected {shown} = {wanted!r})"
        found, value = _at_path(data, self.json_path)
        if not found:
            return f"JSON has no {shown}"
        text = value if isinstance(value, str) else json.dumps(value)
        return None if text == wanted else f"{shown} is {text!r}, expected {wanted!r}"

    def shown_version(self, body: str) -> str:
        """What to report as the served version of a matching answer."""
        if not self.prove_version:
            return "(not checked)"
        if self.json_equals is not None:
            try:
                found, value = _at_path(json.loads(body), self.json_path)
            except ValueError:
                found, value = False, None
            if found:
                return value if isinstance(value, str) else json.dumps(value)
        if self.body_contains is not None:
            return body.strip()
        return served_version(body)

    def describe(self, sha: str) -> str:
        """The proof in words, for messages: ``JSON build.commit = 'abc…'``."""
        status = "any 2xx" if self.status is None else f"status {self.status}"
        if not self.prove_version:
            return status
        if self.json_equals is not None:
            proof = f"JSON {'.'.join(self.json_path)} = {render(self.json_equals, sha)!r}"
        elif self.body_contains is not None:
            proof = f"body containing {render(self.body_contains, sha)!r}"
        else:
            proof = f"version {sha!r}"
        return f"{status} with {proof}"


DEFAULT = Contract()
