"""The cache-keyed Dockerfile and the ignore file ``podman build`` is given (pure)."""

from __future__ import annotations

import hashlib
import json

from conveyor.engines.podman_build import KEY_LABEL, ignore_file, keyed_dockerfile


def key(values: dict[str, str]) -> str:
    encoded = json.dumps(dict(sorted(values.items())), separators=(",", ":")).encode()
    return f"LABEL {KEY_LABEL}={hashlib.sha256(encoded).hexdigest()}"


HELLO = (
    "ARG BASE_IMAGE=python:3.12-slim\n"
    "FROM ${BASE_IMAGE}\n"
    "ARG GIT_SHA=dev\n"
    "ENV APP_VERSION=${GIT_SHA} \\\n"
    "    PORT=8080\n"
    "COPY app.py .\n"
)


def test_a_key_follows_each_arg_of_a_stage_that_declares_a_build_arg() -> None:
    keyed = keyed_dockerfile(HELLO, {"BASE_IMAGE": "base:1", "GIT_SHA": "c0ffee"})

    assert keyed.text.splitlines() == [
        "ARG BASE_IMAGE=python:3.12-slim",  # before FROM: it only feeds FROM, no key
        "FROM ${BASE_IMAGE}",
        "ARG GIT_SHA=dev",
        key({"GIT_SHA": "c0ffee"}),
        "ENV APP_VERSION=${GIT_SHA} \\",
        "    PORT=8080",
        "COPY app.py .",
    ]
    # nothing worth caching comes before the key: the layer cache cannot help
    assert not keyed.reusable


def test_the_key_changes_with_the_value_and_only_with_it() -> None:
    first = keyed_dockerfile(HELLO, {"GIT_SHA": "a" * 40}).text
    again = keyed_dockerfile(HELLO, {"GIT_SHA": "a" * 40}).text
    other = keyed_dockerfile(HELLO, {"GIT_SHA": "b" * 40}).text

    assert first == again
    assert first != other
    assert "a" * 40 not in first  # the label carries a digest, not the value


def test_work_before_the_first_key_is_reusable() -> None:
    text = (
        "FROM base AS deps\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
        "ARG GIT_SHA\nENV V=$GIT_SHA\n"
    )
    keyed = keyed_dockerfile(text, {"GIT_SHA": "1"})
    assert keyed.reusable
    assert keyed.text.splitlines()[-2:] == [key({"GIT_SHA": "1"}), "ENV V=$GIT_SHA"]


def test_args_not_passed_get_no_key_and_several_names_share_one() -> None:
    text = "FROM base\nARG UNSET\nARG A=1 \\\n  # a comment inside\n  B\nRUN echo $A $B\n"
    keyed = keyed_dockerfile(text, {"A": "x", "B": "y", "OTHER": "z"})

    assert keyed.text.splitlines() == [
        "FROM base",
        "ARG UNSET",
        "ARG A=1 \\",
        "  # a comment inside",
        "  B",
        key({"A": "x", "B": "y"}),
        "RUN echo $A $B",
    ]
    assert not keyed.reusable  # the RUN comes after the key


def test_each_stage_is_keyed_on_its_own_and_lowercase_keywords_count() -> None:
    text = "from base as one\narg V\nrun true\nFROM base AS two\nRUN make\nARG V\n"
    keyed = keyed_dockerfile(text, {"V": "2"})

    lines = keyed.text.splitlines()
    assert lines.count(key({"V": "2"})) == 2
    assert lines.index(key({"V": "2"})) == 2
    assert keyed.reusable  # stage two runs 'make' before its key


def test_the_escape_directive_sets_the_continuation_character() -> None:
    text = "# escape=`\nFROM base\nARG V=1 `\n  W\nENV X=$V\n"
    keyed = keyed_dockerfile(text, {"W": "w"})
    assert keyed.text.splitlines()[2:5] == ["ARG V=1 `", "  W", key({"W": "w"})]


def test_ignore_file_keeps_the_users_patterns_and_excludes_the_run_store_last() -> None:
    text = ignore_file("*\n!src\n!.conveyor\n")
    lines = [line for line in text.splitlines() if not line.startswith("#")]

    assert lines == ["*", "!src", "!.conveyor", ".conveyor", "**/.conveyor"]
    assert ignore_file(None).splitlines()[1:] == [".conveyor", "**/.conveyor"]
