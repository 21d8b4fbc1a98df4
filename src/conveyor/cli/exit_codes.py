"""The one table of exit codes. Only the CLI turns results and errors into numbers.

| code | meaning |
|------|---------|
| 0    | success: every selected stage succeeded (or was skipped on request) |
| 1    | a stage failed (tests, build, smoke) or an unexpected error |
| 2    | usage error: unknown option or argument (typer/click) |
| 3    | configuration error: bad file, field or value; invalid stage graph |
| 4    | policy refused: mutable tag, registry not allowed, tag exists, policy check failed |
| 5    | scan gate: findings at a blocking severity |
| 6    | missing tool or engine: podman, skopeo, git, kubectl, dagger ... |
| 7    | unreachable: registry, git remote or URL did not answer |
| 8    | GitOps: manifest missing/malformed, push rejected, concurrent conflict, forge API error |
| 9    | smoke test: the service never served the expected version in time |
| 124  | timeout: a stage ran past its timeout, or a process past its limit (killed) |
| 129  | interrupted by SIGHUP (128 + signal number) |
| 130  | interrupted by SIGINT (Ctrl-C) |
| 143  | interrupted by SIGTERM (what a CI cancel sends) |

An interrupted ``conveyor run`` still cancels its stages, kills their
processes, removes its containers and temporary files and writes
``summary.json`` before it exits with 128 + the signal's number.
"""

from __future__ import annotations

import signal
from enum import IntEnum

from conveyor import errors


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    CONFIG = 3
    POLICY = 4
    SCAN_GATE = 5
    MISSING_TOOL = 6
    UNREACHABLE = 7
    GITOPS = 8
    SMOKE = 9
    TIMEOUT = 124
    HANGUP = 128 + signal.SIGHUP
    INTERRUPTED = 128 + signal.SIGINT
    TERMINATED = 128 + signal.SIGTERM


# Most specific first: the first matching class wins.
TABLE: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (errors.ConfigError, ExitCode.CONFIG),
    (errors.GraphError, ExitCode.CONFIG),
    (errors.ScaffoldError, ExitCode.CONFIG),
    (errors.PolicyError, ExitCode.POLICY),
    (errors.ScanGateError, ExitCode.SCAN_GATE),
    (errors.ToolMissingError, ExitCode.MISSING_TOOL),
    (errors.EngineUnavailableError, ExitCode.MISSING_TOOL),
    (errors.UnreachableError, ExitCode.UNREACHABLE),
    (errors.GitOpsError, ExitCode.GITOPS),
    (errors.ForgeError, ExitCode.GITOPS),
    (errors.SmokeError, ExitCode.SMOKE),
    (errors.StageTimeoutError, ExitCode.TIMEOUT),
    (errors.CommandTimeoutError, ExitCode.TIMEOUT),
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
)


def exit_code_for(error: BaseException | None) -> ExitCode:
    """The exit code for an error (``None`` means success)."""
    if error is None:
        return ExitCode.OK
    for kind, code in TABLE:
        if isinstance(error, kind):
            return code
    return ExitCode.FAILED


def exit_code_for_signal(signum: int) -> int:
    """The exit code of a run a signal interrupted: 128 + its number (130 for SIGINT)."""
    return 128 + signum
