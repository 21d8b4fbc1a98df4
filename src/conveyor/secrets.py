"""Secret values that never print themselves, and a redactor for text that might.

A :class:`Secret` is read from the environment (or an OIDC exchange) at the
edge and handed down as an object; its ``repr`` and ``str`` are masked so a
log line, an error or a span attribute built from it shows ``***``.  Text that
comes from outside (a tool's stderr, a git URL) goes through :class:`Redactor`
before it is shown, which replaces every known secret value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from conveyor.errors import ConfigError

MASK = "***"


@dataclass(frozen=True)
class Secret:
    """A named secret value. ``reveal()`` is the one way to read it."""

    name: str
    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return f"{self.name}={MASK}"

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, {MASK!r})"

    @classmethod
    def from_env(cls, name: str, env: Mapping[str, str] | None = None) -> Secret:
        """Read the secret named ``name`` from the environment.

        Raises:
            ConfigError: the variable is not set.
        """
        source = os.environ if env is None else env
        try:
            return cls(name, source[name])
        except KeyError:
            raise ConfigError(
                None,
                name,
                "secret environment variable is not set",
                hint=f"export {name}=... (or provide it through your CI's secret store)",
            ) from None


_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


class Redactor:
    """Replaces known secret values (and URL credentials) in text."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        self._values = sorted(
            {s.reveal() for s in secrets if len(s.reveal()) >= 3}, key=len, reverse=True
        )

    def add(self, secret: Secret) -> None:
        if len(secret.reveal()) >= 3 and secret.reveal() not in self._values:
            self._values.append(secret.reveal())
            self._values.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}@", text)
