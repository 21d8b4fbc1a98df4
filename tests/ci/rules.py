"""Properties every CI file Conveyor ships or generates must have.

Each check returns the list of violations (empty when the file is fine), so
that a test can show them all and ``test_rules.py`` can prove each check
catches what it is for.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")

# a full commit SHA: a tag can be moved, a commit cannot
_PINNED_REF = re.compile(r"^[0-9a-f]{40}$")
# `uses: owner/repo@<sha> # v1.2.3`: the comment says which release the SHA is
_USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<uses>[^\s#]+)(?P<rest>.*)$")
_VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+(\s|$)")
#: The one reference not pinned by SHA: the reusable workflow uses the
#: composite action of its own repository at its own release tag (the same
#: commit; a file cannot name the SHA of the commit that contains it).
SELF_ACTION = "conveyor-ci/conveyor"
ACTIONLINT = Path("/var/cache/conveyor/bin/actionlint")
ZIZMOR = Path(sys.executable).with_name("zizmor")
_EXPRESSION = re.compile(r"^\$\{\{\s*[^}]+\}\}$")
_SECRETISH_KEY = re.compile(r"(token|password|secret|credential|creds)", re.IGNORECASE)
_SECRET_LOOKING_VALUE = re.compile(
    r"(ghp_[A-Za-z0-9]{20,}|github_pat_|glpat-|-----BEGIN|AKIA[0-9A-Z]{16}|xox[bp]-)"
)
ALLOWED_JOB_PERMISSIONS = {
    "contents": {"read"},
    "id-token": {"write"},
    "security-events": {"write"},
    "actions": {"read"},
}


def load_yaml(text: str) -> Any:
    """Parse YAML safely (GitLab's ``!reference`` is not used in Conveyor's files)."""
    return YAML(typ="safe").load(StringIO(text))


def validate_schema(schema: str, files: list[Path]) -> subprocess.CompletedProcess[str]:
    """Run the real check-jsonschema CLI with a vendored SchemaStore schema."""
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def walk_strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (key path, string value) in a parsed document."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from walk_strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk_strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


# --- GitHub Actions -----------------------------------------------------------


def github_uses(workflow: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every (where, uses) in a workflow or composite action: reusable calls and step actions."""
    for name, job in workflow.get("jobs", {}).items():
        if "uses" in job:
            yield f"jobs.{name}", job["uses"]
        for index, step in enumerate(job.get("steps", [])):
            if "uses" in step:
                yield f"jobs.{name}.steps[{index}]", step["uses"]
    for index, step in enumerate((workflow.get("runs") or {}).get("steps", [])):
        if "uses" in step:
            yield f"runs.steps[{index}]", step["uses"]


def unpinned_uses(workflow: Mapping[str, Any], self_ref: str | None = None) -> list[str]:
    """``uses:`` entries not pinned to a full commit SHA.

    ``self_ref`` is the one tag allowed for ``SELF_ACTION`` (``vX.Y.Z`` of this release).
    """
    problems = []
    for where, uses in github_uses(workflow):
        if uses.startswith("./"):
            continue  # a workflow or action of this same repository and commit
        name, _, ref = uses.rpartition("@") if "@" in uses else (uses, "", "")
        if name == SELF_ACTION and self_ref is not None and ref == self_ref:
            continue
        if not _PINNED_REF.match(ref):
            problems.append(f"{where}: {uses} is not pinned to a commit SHA")
    return problems


def missing_version_comments(text: str) -> list[str]:
    """Lines ``uses: x@<sha>`` without a ``# vX.Y.Z`` comment naming the release."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        found = _USES_LINE.match(line)
        if found is None or line.lstrip().startswith("#"):
            continue
        ref = found["uses"].rpartition("@")[2]
        if _PINNED_REF.match(ref) and not _VERSION_COMMENT.match(found["rest"]):
            problems.append(f"line {number}: {found['uses']} has no '# vX.Y.Z' comment")
    return problems


def actionlint(files: list[Path]) -> subprocess.CompletedProcess[str]:
    """The real actionlint (scripts/install-go-tools.sh builds it), with shellcheck when present."""
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def zizmor(paths: list[Path], config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real zizmor, offline, failing on findings above low."""
    return subprocess.run(
        [
            str(ZIZMOR),
            "--offline",
            "--no-progress",
            "--format",
            "plain",
            "--min-severity",
            "medium",
            *(["--config", str(config)] if config else ["--no-config"]),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def permission_problems(workflow: Mapping[str, Any]) -> list[str]:
    """Top-level permissions must be empty (or read-only); each job states its own, minimal."""
    problems = []
    top = workflow.get("permissions")
    if top is None:
        problems.append("no top-level permissions: the token would get the repository default")
    elif top not in ({}, {"contents": "read"}):
        problems.append(f"top-level permissions {top!r} are wider than contents: read")
    for name, job in workflow.get("jobs", {}).items():
        permissions = job.get("permissions")
        if not isinstance(permissions, Mapping):
            problems.append(f"jobs.{name}: no explicit permissions mapping ({permissions!r})")
            continue
        for scope, level in permissions.items():
            if level not in ALLOWED_JOB_PERMISSIONS.get(scope, set()) | {"none"}:
                problems.append(f"jobs.{name}: permission {scope}: {level} is not allowed")
    return problems


def inline_secret_problems(document: Any) -> list[str]:
    """Secret-looking keys must take an expression/variable; no value may look like a secret."""
    problems = []
    for path, value in walk_strings(document):
        key = path.rsplit(".", 1)[-1]
        if _SECRET_LOOKING_VALUE.search(value):
            problems.append(f"{path}: the value looks like a secret")
        elif (
            _SECRETISH_KEY.search(key)
            and "[" not in key
            and not (_EXPRESSION.match(value.strip()) or value.startswith("$"))
            and not path.endswith(".description")
            and "permissions." not in f".{path}"
        ):
            problems.append(f"{path}: {key} is set inline instead of from secrets or variables")
    return problems


#: Actions that exchange the job's OIDC token: an Azure login, PyPI trusted publishing.
_OIDC_ACTIONS = ("azure/login@", "pypa/gh-action-pypi-publish@")


def _has_azure_login(job: Mapping[str, Any]) -> bool:
    steps = job.get("steps", [])
    return any(str(step.get("uses", "")).lower().startswith(_OIDC_ACTIONS) for step in steps)


def id_token_problems(
    workflow: Mapping[str, Any], resolve: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """``id-token: write`` only in jobs that log in by OIDC (directly or in the called workflow).

    ``resolve`` maps a reusable workflow reference to its parsed content.
    """
    problems = []
    for name, job in workflow.get("jobs", {}).items():
        if (job.get("permissions") or {}).get("id-token") != "write":
            continue
        if _has_azure_login(job):
            continue
        called = (resolve or {}).get(job.get("uses", ""))
        if called is not None and any(_has_azure_login(j) for j in called["jobs"].values()):
            continue
        problems.append(f"jobs.{name}: id-token: write but no OIDC login happens there")
    for name, job in workflow.get("jobs", {}).items():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).lower().startswith("azure/login@"):
                given = set(step.get("with", {}))
                if given & {"creds", "client-secret"}:
                    problems.append(f"jobs.{name}: azure/login is given a client secret")
                if (job.get("permissions") or {}).get("id-token") != "write":
                    problems.append(f"jobs.{name}: azure/login without id-token: write")
    return problems


def github_run_scripts(job: Mapping[str, Any]) -> str:
    """All ``run:`` text of a job, joined."""
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def promotion_problems(workflow: Mapping[str, Any]) -> list[str]:
    """Jobs that promote run under the protected environment and only open a pull request."""
    problems = []
    promoting = {
        name: job
        for name, job in workflow.get("jobs", {}).items()
        if "conveyor promote" in github_run_scripts(job)
    }
    if not promoting:
        problems.append("no job runs 'conveyor promote'")
    for name, job in promoting.items():
        environment = job.get("environment")
        if isinstance(environment, Mapping):
            environment = environment.get("name")
        if environment != "production":
            problems.append(f"jobs.{name}: not bound to environment: production ({environment!r})")
        script = github_run_scripts(job)
        if not re.search(r"--from (staging|\"\$CONVEYOR_FROM\") --to production", script):
            problems.append(f"jobs.{name}: does not promote --from staging --to production")
        if re.search(r"\bgit\s+push\b", script):
            problems.append(f"jobs.{name}: pushes with git instead of opening a pull request")
        if (job.get("permissions") or {}).get("contents") != "read":
            problems.append(f"jobs.{name}: contents permission is not read-only")
    return problems


# --- GitLab CI ----------------------------------------------------------------


def gitlab_scripts(job: Mapping[str, Any]) -> str:
    """All script lines of a GitLab job (before_script and script), joined."""
    lines: list[str] = []
    for key in ("before_script", "script"):
        lines += [str(line) for line in job.get(key, [])]
    return "\n".join(lines)


def gitlab_image_problems(document: Mapping[str, Any]) -> list[str]:
    """Images and services carry an explicit tag, never ``latest``."""
    problems = []
    for name, job in document.items():
        if not isinstance(job, Mapping):
            continue
        images = [job.get("image")] + [
            s.get("name") if isinstance(s, Mapping) else s for s in job.get("services", [])
        ]
        for image in filter(None, images):
            image_name = str(image.get("name") if isinstance(image, Mapping) else image)
            tag = image_name.rpartition(":")[2] if ":" in image_name.rsplit("/", 1)[-1] else ""
            if not tag or tag == "latest":
                problems.append(f"{name}: image {image_name} is not pinned to a tag")
    return problems


_COMPARISON = re.compile(r"(?P<left>\S+)\s*(?:==|!=|=~|!~)")
_VARIABLE = re.compile(r"^\(*\$[A-Za-z_][A-Za-z0-9_]*$")


def gitlab_rule_problems(document: Mapping[str, Any]) -> list[str]:
    """Every ``rules:if`` comparison has a variable on its left, as GitLab documents it.

    https://docs.gitlab.com/ci/jobs/job_rules/#cicd-variable-expressions: "The
    variable has to be on the left side of the comparison"; a quoted string
    there (``'"x" == "true"'``) is a form the documentation does not give.
    """
    problems = []
    for name, job in document.items():
        if not isinstance(job, Mapping):
            continue
        for rule in job.get("rules", []) or []:
            expression = str(rule.get("if", "")) if isinstance(rule, Mapping) else ""
            for found in _COMPARISON.finditer(expression):
                if not _VARIABLE.match(found["left"]):
                    problems.append(f"{name}: {expression!r} compares {found['left']} on the left")
    return problems


def gitlab_promotion_problems(job_name: str, job: Mapping[str, Any]) -> list[str]:
    """A GitLab promotion job: manual, default branch only, protected environment, no push."""
    problems = []
    environment = job.get("environment")
    if isinstance(environment, Mapping):
        environment = environment.get("name")
    if environment != "production":
        problems.append(f"{job_name}: not bound to environment production ({environment!r})")
    rules = job.get("rules", [])
    expected = {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual"}
    running = [rule for rule in rules if rule.get("when") != "never"]
    if not running or any({k: rule.get(k) for k in expected} != expected for rule in running):
        problems.append(f"{job_name}: rules {rules!r} are not manual-on-the-default-branch only")
    if job.get("allow_failure") is True or any(r.get("allow_failure") is True for r in rules):
        problems.append(f"{job_name}: allow_failure: true turns a failed promotion into a warning")
    script = gitlab_scripts(job)
    if "conveyor promote" not in script or "--from staging --to production" not in script:
        problems.append(f"{job_name}: does not run conveyor promote --from staging --to production")
    if re.search(r"\bgit\s+push\b", script):
        problems.append(f"{job_name}: pushes with git instead of opening a merge request")
    if "id_tokens" in job:
        problems.append(f"{job_name}: asks for an OIDC token it does not use")
    return problems


# --- GitLab CI/CD components ---------------------------------------------------

_INPUT = re.compile(r"\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]")


def component_parts(text: str) -> tuple[dict[str, Any], str]:
    """The ``spec:`` header of a component file and the text of its content document."""
    header, separator, content = text.partition("\n---\n")
    assert separator, "a component file is a spec header, '---', then the content"
    spec: dict[str, Any] = load_yaml(header)["spec"]
    return spec, content


def _input_text(value: Any) -> str:
    """An input's value as GitLab writes it into the content: ``true``/``false``
    for a boolean, a flow sequence for an array (a whole value), else the text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def render_component(text: str, **inputs: Any) -> Any:
    """The content of a component as GitLab would include it: every ``$[[ inputs.X ]]``
    replaced by the given value or the input's default, then parsed.

    Raises:
        KeyError: the content uses an input the header does not declare.
    """
    spec, content = component_parts(text)
    declared = spec.get("inputs", {})
    unknown = set(inputs) - set(declared)
    assert not unknown, f"inputs {sorted(unknown)} are not declared"
    values = {name: _input_text(field.get("default", "")) for name, field in declared.items()}
    for name, value in inputs.items():
        options = declared[name].get("options")
        assert options is None or value in options, f"{name}={value!r} is not one of {options}"
        kind = declared[name].get("type", "string")
        expected = {"boolean": bool, "array": list, "string": str}.get(kind, object)
        assert isinstance(value, expected), f"{name}={value!r} is not of type {kind}"
        values[name] = _input_text(value)
    return load_yaml(_INPUT.sub(lambda found: values[found.group(1)], content))
