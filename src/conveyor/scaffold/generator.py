"""The files ``conveyor init`` writes: planned from templates, then written all or none.

Templates live in ``templates/`` beside this module; a placeholder is
``@@NAME@@`` (neither TOML nor GitHub's ``${{ }}`` use that form). Every value
is inserted as a JSON string, which is also a valid TOML basic string and a
valid YAML double-quoted scalar, so a branch or directory name can never
break the file's syntax.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from conveyor import __version__, _release
from conveyor.errors import ScaffoldError
from conveyor.scaffold import ignore, sections
from conveyor.scaffold.repository import RepositoryFacts, inspect_repository

SUPPORTED_CI = ("github", "gitlab")

#: Where the reusable workflow and the GitLab templates are published.
UPSTREAM_GITHUB = "conveyor-ci/conveyor"
#: The release callers pin: a tag, never a branch.
UPSTREAM_REF = f"v{__version__}"
REUSABLE_WORKFLOW = f"{UPSTREAM_GITHUB}/.github/workflows/conveyor.yml"
#: The CI/CD component (templates/conveyor.yml) on the user's GitLab instance.
GITLAB_COMPONENT = f"$CI_SERVER_FQDN/{UPSTREAM_GITHUB}/conveyor"

REGISTRY_PLACEHOLDER = "myregistry.azurecr.io"
ACR_PLACEHOLDER = "myregistry"
CONFIG_NAME = "conveyor.toml"
CI_FILES = {"github": ".github/workflows/conveyor.yml", "gitlab": ".gitlab-ci.yml"}
_DEFAULT_FORGE_HOSTS = {"github": "github.com", "gitlab": "gitlab.com"}
_API_PATHS = {"github": "/api/v3", "gitlab": "/api/v4"}
_PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")


@dataclass(frozen=True)
class PlannedFile:
    """One file ``conveyor init`` writes.

    Attributes:
        path: Absolute path of the file.
        relative: The path relative to the repository root, as shown to the user.
        content: The whole text of the file.
        todos: What the user still has to fill in, one sentence each.
        action: How ``conveyor init`` reports it ("wrote", "added .conveyor/ to").
    """

    path: Path
    relative: str
    content: str
    todos: tuple[str, ...] = ()
    action: str = "wrote"


def check_ci(ci: str) -> str:
    """``ci`` if Conveyor can generate files for it.

    Raises:
        ScaffoldError: the name is not one of ``SUPPORTED_CI``.
    """
    if ci not in SUPPORTED_CI:
        raise ScaffoldError(
            "--ci",
            f"unknown CI {ci!r}",
            hint=f"choose one of: {', '.join(SUPPORTED_CI)}",
        )
    return ci


def pinned(reference: str, commit: str) -> tuple[str, str | None]:
    """``reference@commit # vX.Y.Z`` for a released CLI; from a checkout the tag, and a TODO.

    A tag can be moved; a commit cannot, and zizmor refuses anything else.
    """
    if commit:
        return f"{reference}@{commit} # {UPSTREAM_REF}", None
    return f"{reference}@{UPSTREAM_REF}", (
        f"this CLI is not a release build, so {reference} is pinned by its tag"
        f" {UPSTREAM_REF}: replace it with the tag's commit SHA"
        f" (git ls-remote https://github.com/{UPSTREAM_GITHUB} refs/tags/{UPSTREAM_REF})"
    )


def plan(facts: RepositoryFacts, ci: str, release_commit: str | None = None) -> list[PlannedFile]:
    """The files for ``ci`` rendered from the templates, nothing written.

    Args:
        facts: What is known of the repository.
        ci: ``"github"`` or ``"gitlab"``.
        release_commit: The commit of this release (default: the one the release
            build recorded, empty in a checkout).

    Raises:
        ScaffoldError: ``ci`` is not supported.
    """
    check_ci(ci)
    commit = _release.COMMIT if release_commit is None else release_commit
    config_path = facts.directory / CONFIG_NAME
    config_relative = config_path.relative_to(facts.toplevel).as_posix()
    return [
        PlannedFile(config_path, config_relative, *_config(facts, ci)),
        PlannedFile(
            facts.toplevel / CI_FILES[ci],
            CI_FILES[ci],
            *_ci_file(facts, ci, config_relative, commit),
        ),
    ]


def scaffold(
    repo_dir: Path, ci: str, force: bool = False, *, facts: RepositoryFacts | None = None
) -> list[PlannedFile]:
    """Write ``conveyor.toml`` and the CI caller file for ``ci`` into ``repo_dir``.

    All or nothing: when a file exists and ``force`` is false, nothing is
    written and the error lists every file that exists. ``.gitignore`` and
    ``.dockerignore`` gain a ``.conveyor/`` line unless they ignore it already.

    Args:
        repo_dir: The application's directory, inside a git repository.
        ci: ``"github"`` or ``"gitlab"``.
        force: Overwrite files that exist.
        facts: What is known of the repository already (read from ``repo_dir`` when None).

    Returns:
        The files written, in the order they were planned, then the ignore files changed.

    Raises:
        ScaffoldError: unknown CI, not a git repository, no Dockerfile, files exist.
    """
    check_ci(ci)
    if facts is None:
        facts = inspect_repository(repo_dir)
    files = plan(facts, ci)
    for planned in files:
        if planned.path.is_dir():
            raise ScaffoldError(
                planned.path,
                "is a directory where conveyor init writes a file; nothing was written",
                hint="move it away, then run 'conveyor init' again",
            )
    existing = [planned.relative for planned in files if planned.path.exists()]
    if existing and not force:
        raise ScaffoldError(
            facts.toplevel,
            f"these files exist already: {', '.join(existing)}; nothing was written",
            hint="pass --force to overwrite them, or move them away first",
        )
    files += ignore_updates(facts)
    _write_all(files)
    return files


def ignore_updates(facts: RepositoryFacts) -> list[PlannedFile]:
    """The ignore files that must gain the ``.conveyor/`` line (none when all ignore it)."""
    updates = []
    for path, pattern in ignore.ignore_files(facts):
        content = ignore.with_pattern(ignore.read_ignore_file(path), pattern)
        if content is not None:
            relative = path.relative_to(facts.toplevel).as_posix()
            updates.append(PlannedFile(path, relative, content, action=f"added {pattern} to"))
    return updates


def forge_host(facts: RepositoryFacts, ci: str) -> str:
    """The host of the forge ``ci`` runs on: origin's host, unless origin is the other forge."""
    other = {host for kind, host in _DEFAULT_FORGE_HOSTS.items() if kind != ci}
    if facts.remote is None or facts.remote.host in other:
        return _DEFAULT_FORGE_HOSTS[ci]
    return facts.remote.host


def _write_all(files: Sequence[PlannedFile]) -> None:
    """Write every file to a temporary name first, then rename them all into place."""
    staged: list[tuple[Path, Path]] = []
    try:
        for planned in files:
            planned.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = planned.path.with_name(f".{planned.path.name}.conveyor-init.tmp")
            temporary.write_bytes(planned.content.encode("utf-8"))
            staged.append((temporary, planned.path))
    except OSError as exc:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise ScaffoldError(
            exc.filename or files[0].path, f"cannot be written: {exc.strerror}; nothing was written"
        ) from exc
    for temporary, target in staged:
        os.replace(temporary, target)


def _config(facts: RepositoryFacts, ci: str) -> tuple[str, tuple[str, ...]]:
    todos = [
        f"set registry.host (now the placeholder {REGISTRY_PLACEHOLDER}) to your registry",
        "set gitops.repo and gitops.forge.project to the manifest repository",
    ]
    if facts.test.todo is not None:
        todos.insert(0, facts.test.todo)
    if facts.compose is not None and facts.compose.left_out:
        left = ", ".join(line.split(" ", 1)[0] for line in facts.compose.left_out)
        todos.append(
            f"add the services of {facts.compose.file} left out of stages.integration ({left}):"
            " the comments there say why"
        )
    smoke = sections.smoke_plan(facts)
    image_name_line, image_name_note = sections.environment_image_name(facts)
    test_notes = [f"image: {facts.test.image_reason}"] if facts.test.image_reason else []
    test_command, moved = sections.unit_test_command(facts)
    test_notes += [moved] if moved else []
    if not facts.test.junit and facts.test.todo is None:
        test_notes.append(
            f"{facts.test.detected} writes no JUnit report: name the file here when your test "
            "runner writes one"
        )
    host = forge_host(facts, ci)
    owner = facts.remote.owner if facts.remote is not None and facts.remote.owner else "OWNER"
    forge_lines = f"kind = {_quote(ci)}\nproject = {_quote(f'{owner}/manifests')}"
    if host != _DEFAULT_FORGE_HOSTS[ci]:
        forge_lines += f"\napi_url = {_quote(f'https://{host}{_API_PATHS[ci]}')}"
    values = {
        "TODO_HEADER": "#\n" + "".join(f"# TODO: {todo}\n" for todo in todos),
        "APP_NAME": _quote(facts.app_name),
        "APP_BUILD": sections.app_build(facts),
        "IMAGES": sections.images_block(facts, smoke),
        "TEST_NOTES": "".join(f"# {note}\n" for note in test_notes),
        "TEST_JUNIT": f"junit = {_quote(facts.test.junit)}",
        "EXTRA_STAGES": sections.extra_stages(facts),
        "SMOKE": sections.smoke_block(facts, smoke),
        "IMAGE_NAME_LINE": image_name_line,
        "IMAGE_NAME_NOTE": image_name_note,
        "REGISTRY_HOST": _quote(REGISTRY_PLACEHOLDER),
        "REGISTRY_PATTERN": _quote("^" + re.escape(REGISTRY_PLACEHOLDER) + "/.+$"),
        "TEST_DETECTED": facts.test.detected,
        "TEST_IMAGE": _quote(facts.test.image),
        "TEST_COMMAND": "[" + ", ".join(_quote(part) for part in test_command) + "]",
        "GITOPS_REPO": _quote(f"https://{host}/{owner}/manifests.git"),
        "FORGE_LINES": forge_lines,
        "STAGING_PATH": _quote(f"apps/{facts.app_name}/overlays/staging"),
        "PRODUCTION_PATH": _quote(f"apps/{facts.app_name}/overlays/production"),
    }
    return render("conveyor.toml.tmpl", values), tuple(todos)


def _ci_file(
    facts: RepositoryFacts, ci: str, config_relative: str, commit: str
) -> tuple[str, tuple[str, ...]]:
    todos = [f"set the ACR name (now the placeholder {ACR_PLACEHOLDER}) to your registry's name"]
    values = {
        "BRANCH": _quote(facts.default_branch),
        "BRANCH_NAME": facts.default_branch,
        "CONFIG_PATH": _quote(config_relative),
        "ACR_NAME": _quote(ACR_PLACEHOLDER),
    }
    if ci == "github":
        values["REUSABLE_WORKFLOW"], todo = pinned(REUSABLE_WORKFLOW, commit)
        todos += [todo] if todo else []
        return render("github-workflow.yml.tmpl", values), tuple(todos)
    values["COMPONENT"], todo = pinned(GITLAB_COMPONENT, commit)
    todos += [todo] if todo else []
    return render("gitlab-ci.yml.tmpl", values), tuple(todos)


def render(template: str, values: Mapping[str, str]) -> str:
    """The template named ``template`` with every ``@@NAME@@`` replaced from ``values``.

    Raises:
        KeyError: the template uses a name ``values`` lacks (a bug in the generator).
    """
    text = resources.files("conveyor.scaffold").joinpath("templates", template).read_text("utf-8")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def _quote(value: str) -> str:
    """``value`` as a JSON string: valid as a TOML basic string and a YAML scalar."""
    return json.dumps(value)
