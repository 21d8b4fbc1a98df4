"""actionlint and zizmor, the real tools, on every workflow, the action and init's output.

actionlint v1.7.12 is built by scripts/install-go-tools.sh (with shellcheck
from Debian it also checks every ``run:`` script); zizmor comes from PyPI
and runs ``--offline``. Nothing above low may be reported.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.scaffold.generator import REUSABLE_WORKFLOW, UPSTREAM_REF, plan
from conveyor.scaffold.repository import inspect_repository

from .conftest import GitRepo
from .rules import REPO, actionlint, load_yaml, missing_version_comments, unpinned_uses, zizmor

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
#: A commit as the release build records it in conveyor._release.
RELEASE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_actionlint_reports_nothing_on_the_projects_workflows() -> None:
    checked = actionlint(WORKFLOWS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == ""


def test_zizmor_reports_nothing_above_low_on_the_workflows_and_the_action() -> None:
    checked = zizmor([REPO / ".github" / "workflows", REPO / "action.yml"], config=None)
    # without the project's configuration, the one tag (the own action, used by
    # the plan, pipeline and promote jobs) is the only finding
    assert checked.returncode != 0
    assert checked.stdout.count("error[unpinned-uses]") == 3, checked.stdout
    assert checked.stdout.count("conveyor-ci/conveyor@") == 3, checked.stdout
    configured = zizmor(
        [REPO / ".github" / "workflows", REPO / "action.yml"],
        config=REPO / ".github" / "zizmor.yml",
    )
    assert configured.returncode == 0, configured.stdout + configured.stderr
    assert "No findings to report" in configured.stdout or "0 high" in configured.stdout


def write_generated_caller(git_repo: GitRepo, tmp_path: Path, commit: str) -> Path:
    repo = git_repo("hello", {"Dockerfile": "FROM scratch\n"}, origin="https://github.com/a/b")
    (config, caller) = plan(inspect_repository(repo), "github", release_commit=commit)
    target = tmp_path / "generated" / ".github" / "workflows" / "conveyor.yml"
    target.parent.mkdir(parents=True)
    target.write_text(caller.content, "utf-8")
    assert config.relative == "conveyor.toml"
    return target


def test_the_caller_a_release_writes_passes_actionlint_and_zizmor(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    caller = write_generated_caller(git_repo, tmp_path, RELEASE_COMMIT)
    text = caller.read_text("utf-8")
    assert f"uses: {REUSABLE_WORKFLOW}@{RELEASE_COMMIT} # {UPSTREAM_REF}\n" in text
    assert unpinned_uses(load_yaml(text)) == []
    assert missing_version_comments(text) == []
    linted = actionlint([caller])
    assert linted.returncode == 0, linted.stdout + linted.stderr
    # the user's repository has no Conveyor configuration for zizmor: none is used
    audited = zizmor([caller])
    assert audited.returncode == 0, audited.stdout + audited.stderr


def test_zizmor_refuses_the_tag_a_checkout_writes(git_repo: GitRepo, tmp_path: Path) -> None:
    caller = write_generated_caller(git_repo, tmp_path, "")
    audited = zizmor([caller])
    assert audited.returncode != 0
    assert "unpinned-uses" in audited.stdout
