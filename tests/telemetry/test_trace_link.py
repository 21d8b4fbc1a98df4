"""Which trace links may be shown: https, a host, a plain path; nothing a token travels in."""

from __future__ import annotations

import pytest

from conveyor.secrets import Redactor, Secret
from conveyor.telemetry.trace_link import shown_trace_url

TRACE = "https://dagger.cloud/acme/traces/4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "link",
    [TRACE, "https://dagger.example.com:8443/team-a/traces/0af7651916cd43dd", f"  {TRACE}\n"],
)
def test_a_plain_https_link_is_shown(link: str) -> None:
    assert shown_trace_url(link) == link.strip()


@pytest.mark.parametrize(
    "link",
    [
        None,
        "",
        f"{TRACE}?",
        f"{TRACE}?token=abc",
        f"{TRACE}#",
        "https://user:pass@dagger.cloud/acme/traces/1",
        "https://dagger.cloud/acme/traces/1;token=abc",
        "https://dagger.cloud/acme/traces/%74oken",
        "https://dagger.cloud/acme traces",
        "ftp://dagger.cloud/acme/traces/1",
        "https:///acme/traces/1",
        "https://[::1/acme",
    ],
)
def test_anything_else_is_not(link: str | None) -> None:
    assert shown_trace_url(link) is None


def test_a_link_with_a_known_secret_is_not_shown() -> None:
    secret = Secret("DAGGER_CLOUD_TOKEN", "dag_1234567890")
    assert shown_trace_url(f"https://dagger.cloud/{secret.reveal()}/x", Redactor([secret])) is None
    assert shown_trace_url(TRACE, Redactor([secret])) == TRACE
