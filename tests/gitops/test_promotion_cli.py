"""``conveyor promote`` and ``conveyor rollback`` through the CLI: exact text and exit codes.

The manifest repository is a real bare git repository; the forge is the
GitHub API double on 127.0.0.1 (named in the configuration's api_url).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from forge.forge_doubles import TOKEN, GitHubApiDouble
from promotion_repo import (
    BRANCH,
    DIGEST_A,
    DIGEST_B,
    SHA_A,
    SHA_B,
    STAGING,
    Remote,
    make_remote,
)
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.cli.exit_codes import ExitCode

IMAGE_A = f"myacr.azurecr.io/hello:{SHA_A}@{DIGEST_A}"
IMAGE_B = f"myacr.azurecr.io/hello:{SHA_B}@{DIGEST_B}"


@pytest.fixture
def remote(manifests: Path, tmp_path: Path) -> Remote:
    return make_remote(manifests, tmp_path)


@pytest.fixture
def github() -> Iterator[GitHubApiDouble]:
    with GitHubApiDouble("acme", "manifests", TOKEN) as double:
        yield double


def write_config(remote: Remote, forge_url: str, tmp_path: Path) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(
        f"""
[app]
name = "hello"

[registry]
host = "myacr.azurecr.io"
repository = "hello"

[gitops]
repo = "{remote.bare}"
branch = "main"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"
promotion = "commit"

[gitops.environments.production]
path = "apps/hello/overlays/production"
promotion = "pull-request"

[gitops.forge]
kind = "github"
project = "acme/manifests"
api_url = "{forge_url}"
token_env = "FORGE_TOKEN"
labels = ["promotion"]
"""
    )
    return path


def invoke(args: list[str], token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {"FORGE_TOKEN": token}
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_promote_opens_a_pull_request(
    remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    config = write_config(remote, github.url, tmp_path)
    main_before = remote.sha()
    code, out, err = invoke(
        ["promote", "--from", "staging", "--to", "production", "--config", str(config)]
    )
    assert (code, err) == (0, "")
    assert out == (
        "production: opened pull request #1 https://github.com/acme/manifests/pull/1\n"
        f"  branch: {BRANCH}\n"
        f"  image: no image -> {IMAGE_A}\n"
    )
    assert remote.sha() == main_before
    assert [r.method for r in github.requests] == ["GET", "POST", "POST"]
    assert github.requests[2].body == {"labels": ["promotion"]}


def test_promote_again_updates(remote: Remote, github: GitHubApiDouble, tmp_path: Path) -> None:
    config = write_config(remote, github.url, tmp_path)
    args = ["promote", "--from", "staging", "--to", "production", "-c", str(config)]
    invoke(args)
    code, out, _ = invoke(args)
    assert code == 0
    assert out.startswith("production: updated pull request #1 ")


def test_an_expired_token_exits_with_the_gitops_code(
    remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    config = write_config(remote, github.url, tmp_path)
    main_before = remote.sha()
    code, out, err = invoke(
        ["promote", "--from", "staging", "--to", "production", "-c", str(config)],
        token="expired-0123",
    )
    assert code == ExitCode.GITOPS
    assert out == ""
    assert err == (
        f"error: GitHub API GET {github.url}/repos/acme/manifests/pulls"
        f"?head=acme%3A{BRANCH.replace('/', '%2F')}&base=main&state=open answered 401: "
        "Bad credentials (the token in $FORGE_TOKEN is invalid or expired)\n"
        "  hint: check that the token is valid, not expired, and has the needed scopes\n"
    )
    assert "expired-0123" not in err
    assert remote.sha() == main_before
    assert remote.branches() == ["main"]


def test_a_missing_token_variable(remote: Remote, github: GitHubApiDouble, tmp_path: Path) -> None:
    config = write_config(remote, github.url, tmp_path)
    code, _, err = invoke(
        ["promote", "--from", "staging", "--to", "production", "-c", str(config)], token=None
    )
    assert code == ExitCode.CONFIG
    assert err == (
        "error: configuration: FORGE_TOKEN: secret environment variable is not set\n"
        "  hint: export FORGE_TOKEN=... (or provide it through your CI's secret store)\n"
    )
    assert github.requests == []


def test_an_unreachable_forge(remote: Remote, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(remote, f"http://127.0.0.1:{port}", tmp_path)
    code, _, err = invoke(["promote", "--from", "staging", "--to", "production", "-c", str(config)])
    assert code == ExitCode.UNREACHABLE
    assert err.startswith(f"error: GitHub API http://127.0.0.1:{port}/repos/acme/manifests/pulls?")
    assert remote.branches() == ["main"]


def test_unknown_environment(remote: Remote, github: GitHubApiDouble, tmp_path: Path) -> None:
    config = write_config(remote, github.url, tmp_path)
    code, _, err = invoke(["promote", "--from", "stagin", "--to", "production", "-c", str(config)])
    assert code == ExitCode.CONFIG
    assert err == (
        "error: configuration: --from: no environment named 'stagin' in gitops.environments\n"
        "  hint: known environments: production, staging\n"
    )


def test_target_equals_source(remote: Remote, github: GitHubApiDouble, tmp_path: Path) -> None:
    config = write_config(remote, github.url, tmp_path)
    code, _, err = invoke(["promote", "--from", "staging", "--to", "staging", "-c", str(config)])
    assert code == ExitCode.GITOPS
    assert err == (
        "error: cannot promote environment 'staging' to itself\n"
        "  hint: pass a different environment to --to (e.g. --from staging --to production)\n"
    )


def test_source_with_no_image(remote: Remote, github: GitHubApiDouble, tmp_path: Path) -> None:
    config = write_config(remote, github.url, tmp_path)
    main_before = remote.sha()
    code, _, err = invoke(["promote", "--from", "production", "--to", "staging", "-c", str(config)])
    assert code == ExitCode.GITOPS
    assert err.startswith("error: environment 'production' pins no image named 'hello'")
    assert remote.sha() == main_before


def test_rollback_staging(remote: Remote, github: GitHubApiDouble, tmp_path: Path) -> None:
    remote.set_staging(SHA_B, DIGEST_B)
    config = write_config(remote, github.url, tmp_path)
    code, out, err = invoke(["rollback", "staging", "-c", str(config)])
    assert (code, err) == (0, "")
    assert out == (
        f"staging: committed {remote.sha()[:12]} to main\n  image: {IMAGE_B} -> {IMAGE_A}\n"
    )
    assert remote.image("main", STAGING) is not None
    assert remote.image("main", STAGING).digest == DIGEST_A  # type: ignore[union-attr]


def test_rollback_to_a_digest_it_never_ran(
    remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    config = write_config(remote, github.url, tmp_path)
    digest = "sha256:" + "9" * 64
    code, _, err = invoke(["rollback", "staging", "--to", digest, "-c", str(config)])
    assert code == ExitCode.GITOPS
    assert err == (
        f"error: {digest} is not among the images 'staging' ran "
        "(last 1 changes of apps/hello/overlays/staging)\n"
        "  hint: the environment has no earlier image\n"
    )


def test_rollback_steps_below_one_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke(["rollback", "staging", "--steps", "0"])
    assert code == ExitCode.USAGE
    assert "Invalid value for '--steps'" in err


def test_the_console_script_runs_promote(
    remote: Remote, github: GitHubApiDouble, tmp_path: Path
) -> None:
    config = write_config(remote, github.url, tmp_path)
    script = Path(sys.executable).parent / "conveyor"
    done = subprocess.run(
        [str(script), "promote", "--from", "staging", "--to", "production", "-c", str(config)],
        capture_output=True,
        text=True,
        env={"FORGE_TOKEN": TOKEN, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("production: opened pull request #1 ")
