"""The git adapter: tokens over real smart HTTP never land in config, URLs or messages."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from gitops_helpers import git, show

from conveyor.cli.exit_codes import ExitCode, exit_code_for
from conveyor.errors import GitAuthError, PushRejectedError, ToolMissingError
from conveyor.gitops.edit import FileEdit
from conveyor.gitops.git import Git, GitAuth
from conveyor.gitops.kustomization import ImageEdit
from conveyor.gitops.update import update_manifest
from conveyor.secrets import Secret
from git_http import GitHttpRemote, serve_git_http

STAGING = "apps/hello/overlays/staging/kustomization.yaml"
EDIT = FileEdit(STAGING, ImageEdit("hello", "myacr.azurecr.io/hello", "v9", None))


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_token_update_over_http_keeps_token_out_of_git_config(
    http_remote: GitHttpRemote, remote: Path
) -> None:
    auth = GitAuth.from_env("MANIFEST_TOKEN", {"MANIFEST_TOKEN": http_remote.token})
    seen: list[tuple[str, list[Path]]] = []

    def inspect(root: Path) -> None:
        seen.append(((root / ".git/config").read_text(), files_containing(root, http_remote.token)))

    result = update_manifest(
        http_remote.url, "main", [EDIT], message="m", auth=auth, verify=inspect
    )
    assert result.changed
    config, leaking = seen[0]
    assert http_remote.token not in config
    assert f"url = {http_remote.url}\n" in config  # the plain URL, no credentials in it
    assert leaking == []
    assert 'newTag: "v9"' in show(remote, STAGING)
    # the server really demanded and received the token
    assert any(h.startswith("Basic ") for h in http_remote.authorizations)
    assert "" in http_remote.authorizations


def test_expired_token_is_a_clear_auth_error_without_the_token(
    http_remote: GitHttpRemote, remote: Path
) -> None:
    expired = "expired-token-0123456789"
    auth = GitAuth(token=Secret("MANIFEST_TOKEN", expired))
    before = git("rev-parse", "main", cwd=remote)
    with pytest.raises(GitAuthError) as caught:
        update_manifest(http_remote.url, "main", [EDIT], message="m", auth=auth)
    message = str(caught.value)
    assert expired not in message
    assert expired not in repr(caught.value.__dict__)
    assert message.startswith(
        f"push of 'main' to {http_remote.url} was rejected: authentication failed"
    )
    assert "hint: check that the token in gitops.token_env is set, not expired" in message
    assert isinstance(caught.value, PushRejectedError)
    assert exit_code_for(caught.value) is ExitCode.GITOPS
    assert git("rev-parse", "main", cwd=remote) == before


def test_missing_token_fails_without_prompting(http_remote: GitHttpRemote) -> None:
    with pytest.raises(GitAuthError, match="authentication failed"):
        update_manifest(http_remote.url, "main", [EDIT], message="m")


def test_credentials_in_a_url_are_redacted_in_errors(tmp_path: Path) -> None:
    url = f"http://user:hunter22@127.0.0.1:9/{tmp_path.name}.git"
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the type is asserted below
        update_manifest(url, "main", [EDIT], message="m")
    assert "hunter22" not in str(caught.value)
    assert "http://***@127.0.0.1:9" in str(caught.value)


def test_auth_environment_for_token_and_ssh_key(tmp_path: Path) -> None:
    token = GitAuth(token=Secret("T", "abc123"), username="oauth2").environment()
    assert token["GIT_CONFIG_KEY_0"] == "credential.helper"
    assert token["GIT_CONFIG_VALUE_0"] == ""
    assert token["GIT_CONFIG_VALUE_1"].startswith("!f()")
    assert "abc123" not in token["GIT_CONFIG_VALUE_1"]
    assert token["CONVEYOR_GIT_TOKEN"] == "abc123"
    assert token["CONVEYOR_GIT_USERNAME"] == "oauth2"
    key = tmp_path / "id ed25519"
    ssh = GitAuth(ssh_key=key, known_hosts=tmp_path / "known_hosts").environment()
    assert shlex.split(ssh["GIT_SSH_COMMAND"]) == [
        "ssh",
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
    assert GitAuth().environment() == {}


def test_missing_git_binary_is_a_tool_error() -> None:
    with pytest.raises(ToolMissingError, match="'git' is not installed"):
        Git("x", binary="git-that-does-not-exist")


@pytest.mark.parametrize(
    "token",
    [
        "ab\\cd\\nef\\\\gh\\tij\\0kl\\c",  # dash's echo would read these as escapes
        "-n",  # echo would take it for its option
        "%s%d 'quote' \"double\" $HOME `x`",  # printf format, quotes, expansions
    ],
    ids=["backslashes", "echo-option", "format-and-quotes"],
)
def test_a_token_reaches_the_server_byte_for_byte(remote: Path, token: str) -> None:
    with serve_git_http(remote, token) as served:
        auth = GitAuth(token=Secret("MANIFEST_TOKEN", token))
        result = update_manifest(served.url, "main", [EDIT], message="m", auth=auth)
    assert result.changed
    assert served.expected in served.authorizations  # exactly this token, not a cut one
    assert 'newTag: "v9"' in show(remote, STAGING)
