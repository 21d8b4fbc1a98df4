"""Every error Conveyor raises, in one tree.

::

    ConveyorError                 anything Conveyor reports to a user
    ├── ConfigError               a configuration file or value is wrong (file, field, expected)
    ├── GraphError                the stage graph is not a DAG one can run
    │   ├── DuplicateStageError
    │   ├── UnknownDependencyError
    │   ├── UnknownStageError     --only/--skip name a stage that does not exist
    │   └── CycleError            carries the cycle as a path a -> b -> a
    ├── PolicyError               an image reference breaks a rule (latest, registry, no digest)
    │   ├── TagExistsError        the tag holds another commit's image: never overwritten
    │   ├── TagRaceError          after a push the tag holds another image than ours (both digests)
    │   └── InvalidReferenceError the text is not an image reference at all
    ├── ScanGateError             the image scan found what the gate refuses
    ├── ScanReportError           a scanner's report is unreadable or of an unknown schema
    ├── EngineError               a container operation failed
    │   ├── ToolMissingError      podman, buildah, skopeo, git, kubectl, dagger ... not installed
    │   ├── EngineUnavailableError  the engine asked for cannot run here
    │   ├── CommandFailedError    a process exited non-zero (command, exit code, stderr tail)
    │   │   └── CommandTimeoutError  a process ran past its time limit and was killed
    │   ├── ServiceStartError     a stage's service did not start or never opened its port
    │   ├── RegistryAuthError     the registry refused the credentials (401/403) or wants some
    │   └── RegistryAnswerError   the registry answered neither "found" nor "absent"
    ├── UnreachableError          a registry, git remote or URL did not answer
    ├── GitOpsError               the manifest repository could not be updated
    │   ├── ManifestError         a kustomization/values file is missing or malformed
    │   │   └── RenderUnavailableError  kustomize cannot render here (remote base offline, helm)
    │   ├── PushConflictError     someone else set the same image to another value
    │   └── PushRejectedError     the remote refused the push (protected branch, auth) after retries
    │       └── GitAuthError      the git remote refused the credentials (missing, wrong, expired)
    ├── ForgeError                the GitHub/GitLab API answered with an error
    ├── SmokeError                the service never served the expected version in time
    ├── RunStoreError             .conveyor/runs holds no such run, or a span file is damaged
    ├── StageTimeoutError         a stage ran past its timeout
    ├── TestsFailedError          the test command exited non-zero
    ├── StageCommandError         a custom stage's command exited non-zero
    ├── StageOutputError          a Python stage returned something other than a dict of strings
    └── ScaffoldError             conveyor init: no Dockerfile, not a git repository, files exist

Each error builds its message from its typed context and ends with what to do
next, so that the CLI prints one clear line.  Exit codes are assigned by the
CLI from one table (``conveyor.cli.exit_codes``), never here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class ConveyorError(Exception):
    """Base of every error Conveyor reports.

    Args:
        message: What went wrong, naming the file, field or value involved.
        hint: What the user can do about it.
    """

    retryable = True
    """Whether running the same step again may succeed (the scheduler's retries)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(ConveyorError):
    """A configuration file or value is wrong."""

    retryable = False

    def __init__(
        self,
        path: Path | str | None,
        field: str | None,
        problem: str,
        *,
        hint: str | None = None,
        variable: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.field = field
        self.problem = problem
        self.variable = variable
        where = str(self.path) if self.path is not None else "configuration"
        if variable is not None:  # the value came from CONVEYOR_X__Y, not from the file
            where = f"environment variable {variable}"
        if field:
            where = f"{where}: {field}"
        super().__init__(f"{where}: {problem}", hint=hint)


class GraphError(ConveyorError):
    """The stage graph cannot be run."""

    retryable = False


class DuplicateStageError(GraphError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"stage {name!r} is defined twice", hint="give every stage a unique name")


class UnknownDependencyError(GraphError):
    def __init__(self, stage: str, dependency: str, known: Sequence[str]) -> None:
        self.stage = stage
        self.dependency = dependency
        super().__init__(
            f"stage {stage!r} needs {dependency!r}, which is not a stage",
            hint=f"known stages: {', '.join(sorted(known))}",
        )


class UnknownStageError(GraphError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        super().__init__(
            f"no stage named {name!r}", hint=f"known stages: {', '.join(sorted(known))}"
        )


class CycleError(GraphError):
    """The stages depend on each other in a loop; ``cycle`` is the path."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(
            f"stages form a cycle: {' -> '.join(self.cycle)}",
            hint="remove one of these 'needs' entries",
        )


class PolicyError(ConveyorError):
    """An image reference breaks a policy rule."""

    retryable = False

    def __init__(self, ref: str, rule: str, *, hint: str | None = None) -> None:
        self.ref = ref
        self.rule = rule
        super().__init__(f"image {ref!r} refused: {rule}", hint=hint)


class TagExistsError(PolicyError):
    """The tag is in the registry with an image not built from this commit.

    Args:
        ref: The address refused.
        found: What the existing image is, e.g. the revision its label names.
    """

    def __init__(self, ref: str, *, found: str | None = None) -> None:
        self.found = found
        super().__init__(
            ref,
            "the tag already exists in the registry and pushed tags are never overwritten"
            + (f" ({found})" if found else ""),
            hint="build a new commit; a git SHA is published once",
        )


class TagRaceError(PolicyError):
    """After our push the tag holds another image: another writer pushed to it too.

    Args:
        ref: The address (``registry/repository:tag``).
        ours: The digest this run pushed.
        theirs: The digest the tag holds now.
    """

    def __init__(self, ref: str, *, ours: str, theirs: str) -> None:
        self.ours = ours
        self.theirs = theirs
        super().__init__(
            ref,
            f"after pushing {ours} the tag holds {theirs}: another writer pushed to it "
            "at the same time",
            hint="nothing was deployed from this run; make the tag immutable in the registry "
            "(README: Guarantees) and re-run one pipeline for this commit",
        )


class ScanGateError(ConveyorError):
    """The scan found vulnerabilities at or above the gate's severities."""

    retryable = False

    def __init__(self, image: str, blocking: Sequence[str], fail_on: Sequence[str]) -> None:
        self.image = image
        self.blocking = tuple(blocking)
        self.fail_on = tuple(fail_on)
        shown = ", ".join(self.blocking[:5]) + (" ..." if len(self.blocking) > 5 else "")
        super().__init__(
            f"scan of {image} found {len(self.blocking)} finding(s) at "
            f"{'/'.join(self.fail_on)}: {shown}",
            hint="fix them, or add an entry with a reason and an expiry to stages.scan.ignore",
        )


class EngineError(ConveyorError):
    """A container operation failed."""


class ToolMissingError(EngineError):
    retryable = False

    def __init__(self, tool: str, *, hint: str | None = None) -> None:
        self.tool = tool
        super().__init__(
            f"{tool!r} is not installed or not on PATH",
            hint=hint or f"install {tool}, e.g. 'apt-get install {tool}'",
        )


class EngineUnavailableError(EngineError):
    def __init__(self, engine: str, reason: str, *, hint: str | None = None) -> None:
        self.engine = engine
        self.reason = reason
        super().__init__(f"engine {engine!r} cannot run here: {reason}", hint=hint)


class CommandFailedError(EngineError):
    """A process exited non-zero; carries the command, exit code and stderr tail."""

    def __init__(
        self,
        command: Sequence[str],
        exit_code: int,
        stderr: str,
        *,
        hint: str | None = None,
        tail_lines: int = 20,
    ) -> None:
        self.command = tuple(command)
        self.exit_code = exit_code
        self.stderr = stderr
        tail = "\n".join(stderr.rstrip().splitlines()[-tail_lines:])
        text = f"command failed with exit code {exit_code}: {' '.join(self.command)}"
        if tail:
            text += "\n" + "\n".join(f"  | {line}" for line in tail.splitlines())
        super().__init__(text, hint=hint)


class CommandTimeoutError(CommandFailedError):
    """A process ran past its time limit; it was killed with its process group."""

    def __init__(self, command: Sequence[str], timeout: float, exit_code: int, stderr: str) -> None:
        self.command = tuple(command)
        self.timeout = timeout
        self.exit_code = exit_code
        self.stderr = stderr
        text = f"command did not finish within {timeout:g}s and was killed: {' '.join(command)}"
        tail = stderr.rstrip().splitlines()[-5:]
        if tail:
            text += "\n" + "\n".join(f"  | {line}" for line in tail)
        EngineError.__init__(
            self, text, hint="check what it waits for (a remote that does not answer, a prompt)"
        )


class ServiceStartError(EngineError):
    """A service of a run did not start, or did not accept connections on its port in time.

    Carries the service's name, image and port, why it failed and the last
    lines of its log (already redacted by the engine; ``None`` when it never ran).
    """

    def __init__(
        self,
        service: str,
        image: str,
        port: int,
        reason: str,
        log: str | None = None,
        *,
        tail: int = 20,
        hint: str | None = None,
    ) -> None:
        self.service = service
        self.image = image
        self.port = port
        self.reason = reason
        self.log = log
        text = f"service {service!r} (image {image}, port {port}) {reason}"
        if log is not None:  # None: it never ran, the reason says why
            lines = log.rstrip().splitlines()[-tail:]
            text += (
                "\n  it logged nothing"
                if not lines
                else (
                    f"\n  its last {len(lines)} log line(s):\n"
                    + "\n".join(f"  | {line}" for line in lines)
                )
            )
        super().__init__(
            text,
            hint=hint
            or f"check the service's image, command and env in the stage's services, and that "
            f"it listens on port {port} on every interface (0.0.0.0), not only on 127.0.0.1",
        )


class RegistryAuthError(EngineError):
    """The registry answered 401/403: credentials missing, wrong, or without access."""

    retryable = False

    def __init__(self, host: str, repository: str, status: int, detail: str) -> None:
        self.host = host
        self.repository = repository
        self.status = status
        self.detail = detail
        super().__init__(
            f"registry {host} refused access to {repository} ({status}): {detail}",
            hint=f"log in ('podman login {host}' or 'docker login {host}') or set "
            "registry.username_env / registry.password_env; check the account may push there",
        )


class RegistryAnswerError(EngineError):
    """The registry answered neither "found" nor "absent": whether the tag exists is unknown."""

    retryable = False

    def __init__(self, host: str, what: str, detail: str) -> None:
        self.host = host
        self.what = what
        self.detail = detail
        super().__init__(
            f"registry {host} gave an unexpected answer to {what}: {detail}",
            hint="nothing was pushed: whether the tag exists is unknown; "
            "check registry.host and any proxy in front of the registry",
        )


class UnreachableError(ConveyorError):
    def __init__(self, what: str, target: str, detail: str, *, hint: str | None = None) -> None:
        self.what = what
        self.target = target
        self.detail = detail
        super().__init__(f"{what} {target} is unreachable: {detail}", hint=hint)


class GitOpsError(ConveyorError):
    """The manifest repository could not be updated."""


class ManifestError(GitOpsError):
    def __init__(self, path: Path | str, problem: str, *, hint: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}", hint=hint)


class RenderUnavailableError(ManifestError):
    """kustomize cannot render a directory here, for a reason outside its files.

    A remote base that cannot be fetched, ``helmCharts`` without
    ``--enable-helm`` or without a ``helm`` binary: the manifests may well be
    right, they just cannot be checked on this machine.

    Args:
        path: The directory.
        problem: What kustomize said, cleaned.
        reason: What could not run, in a few words ("a remote base", "helm").
    """

    def __init__(
        self, path: Path | str, problem: str, *, reason: str, hint: str | None = None
    ) -> None:
        self.reason = reason
        super().__init__(path, problem, hint=hint)


class PushConflictError(GitOpsError):
    def __init__(self, path: str, image: str, theirs: str, ours: str) -> None:
        self.path = path
        self.image = image
        self.theirs = theirs
        self.ours = ours
        super().__init__(
            f"{path}: image {image!r} was changed concurrently to {theirs!r} "
            f"while this run set {ours!r}",
            hint="re-run the pipeline on the newer commit; nothing was pushed",
        )


class PushRejectedError(GitOpsError):
    def __init__(self, remote: str, branch: str, detail: str, *, hint: str | None = None) -> None:
        self.remote = remote
        self.branch = branch
        self.detail = detail
        super().__init__(f"push of {branch!r} to {remote} was rejected: {detail}", hint=hint)


class ForgeError(ConveyorError):
    def __init__(self, forge: str, method: str, url: str, status: int, detail: str) -> None:
        self.forge = forge
        self.method = method
        self.url = url
        self.status = status
        self.detail = detail
        hint = None
        if status in (401, 403):
            hint = "check that the token is valid, not expired, and has the needed scopes"
        super().__init__(f"{forge} API {method} {url} answered {status}: {detail}", hint=hint)


class SmokeError(ConveyorError):
    def __init__(
        self, url: str, expected: str, last: str, waited: float, proof: str | None = None
    ) -> None:
        self.url = url
        self.expected = expected
        self.last = last
        self.waited = waited
        wanted = f" ({proof})" if proof else ""
        super().__init__(
            f"{url} did not serve version {expected!r}{wanted} within {waited:.0f}s (last: {last})",
            hint="check the deployment in the cluster (Flux/Argo CD status) or raise the"
            " timeout; a service that proves its version otherwise sets [stages.smoke]"
            " status, body_contains, json or prove_version",
        )


class StageTimeoutError(ConveyorError):
    def __init__(self, stage: str, timeout: float) -> None:
        self.stage = stage
        self.timeout = timeout
        super().__init__(
            f"stage {stage!r} ran past its timeout of {timeout:g}s",
            hint=f"raise stages.{stage}.timeout or find what hangs",
        )


class InvalidReferenceError(PolicyError):
    """The text is not an image reference (docker/distribution grammar)."""

    def __init__(self, ref: str, problem: str) -> None:
        super().__init__(
            ref,
            f"not a valid image reference: {problem}",
            hint="write it as [registry[:port]/]repository[:tag][@sha256:<64 hex>]",
        )


class GitAuthError(PushRejectedError):
    """The git remote refused the credentials (missing, wrong or expired token/key)."""

    def __init__(self, remote: str, branch: str, detail: str, *, hint: str | None = None) -> None:
        super().__init__(
            remote,
            branch,
            f"authentication failed: {detail}",
            hint=hint
            or "check that the token in gitops.token_env is set, not expired, "
            "and may write to the repository",
        )


class ScanReportError(ConveyorError):
    """A scanner report (Trivy JSON) cannot be read: not JSON, wrong schema, bad field."""

    def __init__(self, path: Path | str, problem: str, *, hint: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(
            f"{path}: {problem}",
            hint=hint or "pass a report written by 'trivy ... --format json' (SchemaVersion 2)",
        )


class RunStoreError(ConveyorError):
    """The local run store (``.conveyor/runs``) holds no such run or a damaged span file."""

    retryable = False

    def __init__(self, path: Path | str, problem: str, *, hint: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}", hint=hint)


class TestsFailedError(ConveyorError):
    """The test command exited non-zero; carries the summary and the output tail."""

    __test__ = False  # not a pytest test class

    def __init__(self, command: Sequence[str], exit_code: int, summary: str, output: str) -> None:
        self.command = tuple(command)
        self.exit_code = exit_code
        self.summary = summary
        self.output = output
        tail = "\n".join(output.rstrip().splitlines()[-15:])
        text = f"tests failed (exit code {exit_code}): {summary or ' '.join(self.command)}"
        if tail:
            text += "\n" + "\n".join(f"  | {line}" for line in tail.splitlines())
        super().__init__(text, hint="run the test command locally; the JUnit report is kept")


class StageCommandError(ConveyorError):
    """A custom stage's command exited non-zero; carries the output tail."""

    def __init__(
        self, stage: str, command: Sequence[str], exit_code: int, summary: str, output: str
    ) -> None:
        self.stage = stage
        self.command = tuple(command)
        self.exit_code = exit_code
        self.output = output
        tail = "\n".join(output.rstrip().splitlines()[-15:])
        text = f"stage {stage!r} failed (exit code {exit_code}): {summary or ' '.join(command)}"
        if tail:
            text += "\n" + "\n".join(f"  | {line}" for line in tail.splitlines())
        super().__init__(
            text, hint=f"its output and reports are kept in the run's artifacts ({stage}/)"
        )


class StageOutputError(ConveyorError):
    """A Python stage (``@stage``) returned something other than ``None`` or a dict of strings."""

    retryable = False

    def __init__(self, stage: str, origin: str, problem: str) -> None:
        self.stage = stage
        self.origin = origin
        self.problem = problem
        super().__init__(
            f"stage {stage!r} ({origin}) returned {problem}",
            hint="return None or a dict of strings, e.g. {'count': str(count)}",
        )


class ScaffoldError(ConveyorError):
    """``conveyor init`` cannot generate the files: it names the directory or files involved."""

    def __init__(self, path: Path | str, problem: str, *, hint: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}", hint=hint)
