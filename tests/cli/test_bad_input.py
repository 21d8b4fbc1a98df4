"""Bad input through the real console script: one message naming the file or variable, the
field and the value, the exit code from the table, never a traceback.

Every case runs ``conveyor`` in its own directory; all cases start at once
(one process each) so that the table stays fast.  A case is the files it
writes, the arguments, the extra environment, the expected exit code and
the exact first line (``{dir}`` stands for the case's directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CONVEYOR = Path(sys.executable).parent / "conveyor"
SHA = "0123456789abcdef0123456789abcdef01234567"

VALID = """\
[app]
name = "hello"

[registry]
host = "127.0.0.1:5000"
repository = "team/hello"

[gitops]
repo = "https://git.example.com/manifests.git"

[gitops.environments.staging]
path = "apps/hello/overlays/staging"
"""

KUSTOMIZATION = b"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
  - name: hello
    newTag: "1.0"
"""


def config(*lines: str, base: str = VALID) -> dict[str, bytes]:
    """``conveyor.toml``: the valid file with ``lines`` appended (later tables win nothing)."""
    return {"conveyor.toml": (base + "\n".join(lines) + "\n").encode()}


def replaced(old: str, new: str) -> dict[str, bytes]:
    assert old in VALID
    return {"conveyor.toml": VALID.replace(old, new).encode()}


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, bytes]
    args: tuple[str, ...]
    code: int
    line: str
    env: dict[str, str] = field(default_factory=dict)


TOML = "{dir}/conveyor.toml"
CASES = [
    # --- the file itself
    Case(
        "not-utf8",
        {"conveyor.toml": VALID.encode().replace(b"hello", b"h\xe9llo", 1)},
        ("graph",),
        3,
        f"error: {TOML}: is not UTF-8 text (byte 0xe9 on line 2)",
    ),
    Case(
        "utf16",
        {"conveyor.toml": VALID.encode("utf-16")},
        ("graph",),
        3,
        f"error: {TOML}: is not UTF-8 text (byte 0xff on line 1)",
    ),
    Case(
        "config-is-a-directory",
        {"conf/conveyor.toml": VALID.encode()},
        ("graph", "--config", "conf"),
        3,
        "error: {dir}/conf: is a directory, not a configuration file",
    ),
    Case(
        "config-missing",
        {},
        ("graph", "--config", "nope.toml"),
        3,
        "error: {dir}/nope.toml: file does not exist",
    ),
    Case(
        "not-toml",
        {"conveyor.toml": b"[app\nname = 1\n"},
        ("graph",),
        3,
        f"error: {TOML}: is not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 5)",
    ),
    Case(
        "pyproject-without-section",
        {"pyproject.toml": b"[project]\nname = 'x'\n"},
        ("graph", "--config", "pyproject.toml"),
        3,
        "error: {dir}/pyproject.toml: tool.conveyor: section is missing",
    ),
    Case(
        "pyproject-section-not-a-table",
        {"pyproject.toml": b"[tool]\nconveyor = 1\n"},
        ("graph", "--config", "pyproject.toml"),
        3,
        "error: {dir}/pyproject.toml: tool.conveyor: must be a table ([tool.conveyor])",
    ),
    # --- templates checked at load
    Case(
        "message-unknown-field",
        replaced(
            'repo = "https://git.example.com/manifests.git"',
            'repo = "https://git.example.com/manifests.git"\nmessage = "deploy {nope}"',
        ),
        ("graph",),
        3,
        f"error: {TOML}: gitops.message: names the unknown field {{nope}}; the fields are "
        "{environment}, {app}, {short_sha}, {sha}, {image} (write {{ and }} for literal braces) "
        "(got 'deploy {nope}')",
    ),
    Case(
        "message-positional",
        replaced(
            'repo = "https://git.example.com/manifests.git"',
            'repo = "https://git.example.com/manifests.git"\nmessage = "deploy {0}"',
        ),
        ("graph",),
        3,
        f"error: {TOML}: gitops.message: is not a valid template (Replacement index 0 out of "
        "range for positional args tuple); the fields are {environment}, {app}, {short_sha}, "
        "{sha}, {image} (write {{ and }} for literal braces) (got 'deploy {0}')",
    ),
    Case(
        "message-unclosed",
        replaced(
            'repo = "https://git.example.com/manifests.git"',
            'repo = "https://git.example.com/manifests.git"\nmessage = "deploy {app"',
        ),
        ("graph",),
        3,
        f"error: {TOML}: gitops.message: is not a valid template (expected '}}' before end of "
        "string); the fields are {environment}, {app}, {short_sha}, {sha}, {image} "
        "(write {{ and }} for literal braces) (got 'deploy {app')",
    ),
    # --- strict booleans and integers
    Case(
        "insecure-yes",
        replaced('repository = "team/hello"', 'repository = "team/hello"\ninsecure = "yes"'),
        ("graph",),
        3,
        f"error: {TOML}: registry.insecure: Input should be a valid boolean (got 'yes')",
    ),
    Case(
        "insecure-1",
        replaced('repository = "team/hello"', 'repository = "team/hello"\ninsecure = 1'),
        ("graph",),
        3,
        f"error: {TOML}: registry.insecure: Input should be a valid boolean (got 1)",
    ),
    Case(
        "port-string",
        config("[stages.smoke]", 'port = "8080"'),
        ("graph",),
        3,
        f"error: {TOML}: stages.smoke.port: Input should be a valid integer (got '8080')",
    ),
    Case(
        "capacity-float",
        config("[run]", "capacity = 2.0"),
        ("graph",),
        3,
        f"error: {TOML}: run.capacity: Input should be a valid integer (got 2.0)",
    ),
    Case(
        "retries-true",
        config("[stages.build]", "retries = true"),
        ("graph",),
        3,
        f"error: {TOML}: stages.build.retries: Input should be a valid integer (got True)",
    ),
    Case(
        "enabled-string",
        config("[stages.scan]", 'enabled = "false"'),
        ("graph",),
        3,
        f"error: {TOML}: stages.scan.enabled: Input should be a valid boolean (got 'false')",
    ),
    Case(
        "capacity-zero",
        config("[run]", "capacity = 0"),
        ("graph",),
        3,
        f"error: {TOML}: run.capacity: Input should be greater than or equal to 1 (got 0)",
    ),
    # --- durations
    Case(
        "timeout-inf",
        config("[stages.build]", "timeout = inf"),
        ("graph",),
        3,
        f"error: {TOML}: stages.build.timeout: a duration must be at most a week ('168h') "
        "(got inf)",
    ),
    Case(
        "timeout-nan",
        config("[stages.build]", "timeout = nan"),
        ("graph",),
        3,
        f"error: {TOML}: stages.build.timeout: nan is not a duration; use e.g. 30, '30s', '5m' "
        "or '1h30m' (got nan)",
    ),
    Case(
        "timeout-huge",
        config("[stages.build]", 'timeout = "99999999999999999999999999h"'),
        ("graph",),
        3,
        f"error: {TOML}: stages.build.timeout: a duration must be at most a week ('168h') "
        "(got '99999999999999999999999999h')",
    ),
    Case(
        "smoke-timeout-inf-string",
        config("[smoke.staging]", 'url = "http://127.0.0.1:1/version"', 'timeout = "inf"'),
        ("graph",),
        3,
        f"error: {TOML}: smoke.staging.timeout: 'inf' is not a duration; use e.g. 30, '30s', "
        "'5m' or '1h30m' (got 'inf')",
    ),
    Case(
        "deadline-negative",
        config("[stages.smoke]", "deadline = -5"),
        ("graph",),
        3,
        f"error: {TOML}: stages.smoke.deadline: a duration must be positive (got -5)",
    ),
    # --- options
    Case(
        "on-failure-explode",
        config(),
        ("run", "--on-failure", "explode"),
        2,
        "error: conveyor run: Invalid value for '--on-failure': 'explode' is not one of "
        "'finish', 'cancel' (see 'conveyor run --help')",
    ),
    Case(
        "on-failure-in-file",
        config("[run]", 'on_failure = "explode"'),
        ("graph",),
        3,
        f"error: {TOML}: run.on_failure: Input should be 'cancel' or 'finish' (got 'explode')",
    ),
    # --- environment variables
    Case(
        "env-unknown-key",
        config(),
        ("graph",),
        3,
        "error: environment variable CONVEYOR_APP__NAMEX: app.namex: unknown key; check the "
        "spelling against the configuration reference",
        {"CONVEYOR_APP__NAMEX": "x"},
    ),
    Case(
        "env-unknown-section",
        config(),
        ("graph",),
        3,
        "error: environment variable CONVEYOR_REGISTRY_HOST__X: registry_host: unknown key; "
        "check the spelling against the configuration reference",
        {"CONVEYOR_REGISTRY_HOST__X": "x"},
    ),
    Case(
        "env-insecure-yes",
        config(),
        ("graph",),
        3,
        "error: environment variable CONVEYOR_REGISTRY__INSECURE: registry.insecure: "
        "Input should be a valid boolean (got 'yes')",
        {"CONVEYOR_REGISTRY__INSECURE": "yes"},
    ),
    Case(
        "env-capacity-zero",
        config(),
        ("graph",),
        3,
        "error: environment variable CONVEYOR_RUN__CAPACITY: run.capacity: "
        "Input should be greater than or equal to 1 (got 0)",
        {"CONVEYOR_RUN__CAPACITY": "0"},
    ),
    Case(
        "env-into-a-value",
        config(),
        ("graph",),
        3,
        "error: environment variable CONVEYOR_APP__NAME__X: app.name: is a value, not a table: "
        "the variable cannot set a key inside it",
        {"CONVEYOR_APP__NAME__X": "1"},
    ),
    Case(
        "env-timeout-inf",
        config(),
        ("graph",),
        3,
        "error: environment variable CONVEYOR_STAGES__BUILD__TIMEOUT: stages.build.timeout: "
        "a duration must be at most a week ('168h') (got inf)",
        {"CONVEYOR_STAGES__BUILD__TIMEOUT": "inf"},
    ),
    Case(
        "rollback-to-not-a-digest",
        config(),
        ("rollback", "staging", "--to", "notadigest"),
        2,
        "error: conveyor rollback: Invalid value for '--to': 'notadigest' is not a digest; "
        "expected sha256:<64 hex digits> (see 'conveyor rollback --help')",
    ),
    Case(
        "update-not-a-reference",
        config(),
        ("manifest", "update", "staging", "Hello:1@sha256:zz"),
        2,
        "error: conveyor manifest update: Invalid value for 'REF@DIGEST': 'Hello:1@sha256:zz': "
        "not a valid image reference: digest 'sha256:zz' is not 'algorithm:hex' "
        "(see 'conveyor manifest update --help')",
    ),
    Case(
        "init-unknown-ci",
        {},
        ("init", "--ci", "jenkins"),
        2,
        "error: conveyor init: Invalid value for '--ci': 'jenkins' is not one of 'github', "
        "'gitlab' (see 'conveyor init --help')",
    ),
    # --- the user's stages (issue: pipelines as code)
    Case(
        "stage-needs-unknown",
        config("[stages.lint]", 'image = "a/b:1"', 'command = ["x"]', 'needs = ["lnt"]'),
        ("graph",),
        3,
        f"error: {TOML}: stages.lint.needs: 'lnt' is not a stage",
    ),
    Case(
        "stage-cycle",
        config(
            "[stages.a]",
            'image = "a/b:1"',
            'command = ["x"]',
            'needs = ["b"]',
            "[stages.b]",
            'image = "a/b:1"',
            'command = ["x"]',
            'needs = ["a"]',
        ),
        ("graph",),
        3,
        f"error: {TOML}: stages: the stages' needs form a cycle: a -> b -> a",
    ),
    Case(
        "stage-publish-needs-a-stage-needing-publish",
        config(
            "[stages.publish]",
            'needs = ["e2e"]',
            "[stages.e2e]",
            'image = "a/b:1"',
            'command = ["x"]',
            'needs = ["publish"]',
        ),
        ("graph",),
        3,
        f"error: {TOML}: stages: the stages' needs form a cycle: publish -> e2e -> publish",
    ),
    Case(
        "stage-builtin-with-custom-keys",
        config("[stages.build]", 'image = "a/b:1"'),
        ("graph",),
        3,
        f"error: {TOML}: stages.build.image: unknown key: build is a built-in stage, which "
        "takes enabled, needs, retries, secrets, timeout; a stage of your own needs a name of "
        "its own",
    ),
    Case(
        "stage-service-without-image",
        config(
            "[stages.it]",
            'image = "a/b:1"',
            'command = ["x"]',
            'services = [{name = "db", port = 5432}]',
        ),
        ("graph",),
        3,
        f"error: {TOML}: stages.it.services[0]: set image (a pinned image) or build (an image "
        "this pipeline builds), exactly one",
    ),
    Case(
        "stage-without-command",
        config("[stages.lint]", 'image = "a/b:1"'),
        ("graph",),
        3,
        f"error: {TOML}: stages.lint: set command (an argument vector) or script (run with sh "
        "-c), exactly one",
    ),
    Case(
        "stage-mutable-image",
        config("[stages.lint]", 'image = "ruff"', 'command = ["x"]'),
        ("graph",),
        3,
        f"error: {TOML}: stages.lint.image 'ruff' uses a mutable tag (none, which means "
        "latest); pin a version or a digest",
    ),
    Case(
        "stage-reserved-name",
        config("[stages.report]", 'image = "a/b:1"', 'command = ["x"]'),
        ("graph",),
        3,
        f"error: {TOML}: stages: 'report' is a built-in stage without a table of its own (it "
        "writes summary.json, always); give your stage another name",
    ),
    # --- manifest set-image
    Case(
        "set-image-not-utf8",
        {"overlay/kustomization.yaml": KUSTOMIZATION.replace(b'"1.0"', b'"1.0" # \xff')},
        ("manifest", "set-image", "overlay", "hello:2.0"),
        8,
        "error: overlay/kustomization.yaml: is not UTF-8 text (byte 0xff on line 5)",
    ),
    Case(
        "set-image-on-a-file",
        {"overlay/kustomization.yaml": KUSTOMIZATION},
        ("manifest", "set-image", "overlay/kustomization.yaml", "hello:2.0"),
        2,
        "error: conveyor manifest set-image: Invalid value for 'DIR': "
        "'overlay/kustomization.yaml' is a file; pass the directory that holds it (overlay) "
        "(see 'conveyor manifest set-image --help')",
    ),
    Case(
        "set-image-no-directory",
        {},
        ("manifest", "set-image", "overlay", "hello:2.0"),
        2,
        "error: conveyor manifest set-image: Invalid value for 'DIR': 'overlay' is not a "
        "directory (see 'conveyor manifest set-image --help')",
    ),
    *(
        Case(
            f"set-image-{name}",
            {"overlay/kustomization.yaml": KUSTOMIZATION},
            ("manifest", "set-image", "overlay", spec),
            2,
            "error: conveyor manifest set-image: Invalid value for 'NAME=REF[@DIGEST]': "
            f"'{spec}': not a valid image reference: {problem} "
            "(see 'conveyor manifest set-image --help')",
        )
        for name, spec, problem in [
            ("bare-name", "NAME", "'NAME' sets nothing: add :TAG, @DIGEST or =NEWNAME"),
            (
                "empty-new-name",
                "NAME=",
                "nothing after 'NAME='; expected NAME=NEWNAME[:TAG][@DIGEST], NAME:TAG or "
                "NAME@DIGEST",
            ),
            (
                "empty-name",
                "=foo:1",
                "the image name before '=' is empty; expected NAME=NEWNAME[:TAG][@DIGEST], "
                "NAME:TAG or NAME@DIGEST",
            ),
            (
                "bad-tag",
                "NAME:v1+build",
                "tag 'v1+build' is not valid (letters, digits, '_', '.', '-'); expected "
                "NAME=NEWNAME[:TAG][@DIGEST], NAME:TAG or NAME@DIGEST",
            ),
            (
                "two-equals",
                "a=b=c",
                "more than one '='; expected NAME=NEWNAME[:TAG][@DIGEST], NAME:TAG or NAME@DIGEST",
            ),
            ("bad-digest", "hello@sha256:zz", "digest 'sha256:zz' is not 'algorithm:hex'"),
        ]
    ),
]


Outcomes = dict[str, tuple[Path, int, str, str]]


def run_cases(cases: list[Case], tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    """Every case run once, all at the same time: id -> (directory, code, stdout, stderr)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    started = {}
    for case in cases:
        directory = tmp_path_factory.mktemp(case.id)
        for name, data in case.files.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(data)
        started[case.id] = (
            directory,
            subprocess.Popen(
                [str(CONVEYOR), *case.args],
                cwd=directory,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**base, "COLUMNS": "400", "CONVEYOR_SOURCE_SHA": SHA, **case.env},
            ),
        )
    results = {}
    for key, (directory, process) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        results[key] = (directory, process.returncode, stdout, stderr)
    return results


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    return run_cases(CASES, tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_error(case: Case, outcomes: Outcomes) -> None:
    directory, code, stdout, stderr = outcomes[case.id]

    assert "Traceback" not in stderr
    assert code == case.code, stderr
    assert stdout == ""
    assert stderr.splitlines()[0] == case.line.replace("{dir}", str(directory.resolve())), stderr
    assert len(stderr.splitlines()) <= 2, stderr  # the error and, at most, its hint


def test_variables_keep_the_case_of_user_keys_and_match_tables_in_any_case(
    tmp_path: Path,
) -> None:
    (tmp_path / "conveyor.toml").write_text(VALID)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
        "CONVEYOR_SOURCE_SHA": SHA,
        "CONVEYOR_APP__BUILD_ARGS__BASE_IMAGE": "127.0.0.1:5000/conveyor/python:3.11",
        "CONVEYOR_GITOPS__ENVIRONMENTS__STAGING__PATH": "apps/hello/overlays/stage-2",
    }
    done = subprocess.run(
        [str(CONVEYOR), "plan"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert f"build args: BASE_IMAGE=127.0.0.1:5000/conveyor/python:3.11 GIT_SHA={SHA}" in (
        done.stdout
    )
    assert "path: apps/hello/overlays/stage-2" in done.stdout
    assert "STAGING" not in done.stdout
