"""The one place external tools (podman, buildah, skopeo ...) are started.

:func:`run_process` runs a command with anyio, captures its output and
translates the ways it can go wrong into the error tree: a tool that is not
on ``PATH`` becomes :class:`~conveyor.errors.ToolMissingError`, a non-zero
exit (when ``check`` is set) :class:`~conveyor.errors.CommandFailedError`
carrying the command, the exit code and the tail of stderr.

Secrets travel by name: each :class:`~conveyor.secrets.Secret` is put into
the child's environment under its name, so a command line can say
``-e TOKEN`` or ``--secret id=TOKEN,env=TOKEN`` and the value never appears
in ``argv`` (which ``ps`` and ``/proc`` show to every user).  Everything
returned or raised has been through a :class:`~conveyor.secrets.Redactor`
that knows those values.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from conveyor.errors import CommandFailedError, ToolMissingError
from conveyor.pipeline.toolcalls import tool_call
from conveyor.secrets import Redactor, Secret


@dataclass(frozen=True)
class ProcessResult:
    """What a finished process left behind, already redacted."""

    command: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the process exited with status 0."""
        return self.exit_code == 0


def child_environment(
    environ: Mapping[str, str] | None,
    env: Mapping[str, str],
    secrets: Sequence[Secret],
) -> dict[str, str]:
    """The environment a child process gets.

    Args:
        environ: The base environment; ``os.environ`` when ``None``.
        env: Variables set on top of the base.
        secrets: Set last, each under its own name.

    Returns:
        A new mapping; neither argument is modified.
    """
    result = dict(os.environ if environ is None else environ)
    result.update(env)
    result.update({secret.name: secret.reveal() for secret in secrets})
    return result


async def run_process(
    command: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Sequence[Secret] = (),
    cwd: Path | None = None,
    stdin: bytes | None = None,
    check: bool = True,
    redactor: Redactor | None = None,
    install_hint: str | None = None,
    failure_hint: str | None = None,
) -> ProcessResult:
    """Run ``command`` to completion and capture its output.

    Args:
        command: The program and its arguments; never a shell string, and
            never containing a secret value.
        environ: The base environment (``os.environ`` when ``None``); its
            ``PATH`` is where the program is looked up.
        env: Extra variables for the child.
        secrets: Put into the child's environment by name.
        cwd: Working directory of the child.
        stdin: Bytes fed to the child's standard input.
        check: Raise on a non-zero exit instead of returning the result.
        redactor: Applied, together with ``secrets``, to everything returned
            or raised.
        install_hint: The hint of the ``ToolMissingError`` raised when the
            program is not found.
        failure_hint: The hint of the ``CommandFailedError``.

    Returns:
        The exit code and the decoded, redacted stdout and stderr.

    Raises:
        ToolMissingError: ``command[0]`` is not on ``PATH`` or not executable.
        CommandFailedError: the exit code was not 0 and ``check`` is set.
    """
    if not command:
        raise ValueError("run_process needs a command")
    redact = Redactor(secrets)
    if redactor is not None:
        for secret in secrets:
            redactor.add(secret)
        redact = redactor
    argv = [str(part) for part in command]
    child_env = child_environment(environ, env or {}, secrets)
    try:
        with tool_call([redact(part) for part in argv]) as exited:
            completed = await anyio.run_process(
                argv,
                input=stdin,
                check=False,
                cwd=cwd,
                env=child_env,
                stdin=subprocess.DEVNULL if stdin is None else None,
            )
            exited(completed.returncode)
    except FileNotFoundError as exc:
        if cwd is not None and exc.filename is not None and Path(exc.filename) == Path(cwd):
            raise
        raise ToolMissingError(argv[0], hint=install_hint) from None
    except PermissionError as exc:
        raise ToolMissingError(
            argv[0], hint=f"{argv[0]} is not executable ({exc.strerror}); {install_hint or ''}"
        ) from None
    result = ProcessResult(
        command=tuple(redact(part) for part in argv),
        exit_code=completed.returncode,
        stdout=redact(completed.stdout.decode(errors="replace")),
        stderr=redact(completed.stderr.decode(errors="replace")),
    )
    if check and not result.ok:
        raise CommandFailedError(result.command, result.exit_code, result.stderr, hint=failure_hint)
    return result
