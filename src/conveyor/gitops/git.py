"""The one place that runs the git binary.

API:
    ``GitAuth(token=Secret|None, username="x-access-token", ssh_key=Path|None,
    known_hosts=Path|None)`` says how to authenticate; ``GitAuth.from_env(name)``
    reads the token from the environment.
    ``Git(remote, auth=...)`` runs commands for one remote: ``clone`` (also
    without a checkout), ``sparse_checkout``/``sparse_disable``/``checkout``,
    ``objects`` (batched reads from the object store, no work tree needed;
    within ``with git.reading(clone):`` every read in that clone goes to one
    long-lived ``git cat-file --batch``),
    ``fetch``, ``reset_hard``, ``commit`` and ``head`` (return :class:`Commit`:
    the commit and its tree), ``push`` (returns :class:`PushOutcome`), ``tip``
    (a remote branch's commit, without a clone), ``rev_parse``, ``status``, ``run``.

Credentials never reach the remote URL, the command line or ``.git/config``:
an HTTPS token is handed to git through a credential helper defined only in
the child's environment (``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``) that prints
an environment variable; an SSH key through ``GIT_SSH_COMMAND``.  Every command
runs through :func:`conveyor.process.run`: killed with its process group on
its timeout or when the stage waiting for it is cancelled; a push already
under way is given :data:`PUSH_SHIELD` seconds to land instead.  Every
failure becomes a :class:`ConveyorError` subclass carrying the command
(redacted), exit code and stderr tail: :class:`ToolMissingError`,
:class:`UnreachableError`, :class:`GitAuthError`, :class:`PushRejectedError`
or :class:`CommandFailedError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import shlex
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from conveyor.errors import (
    CommandFailedError,
    CommandTimeoutError,
    GitAuthError,
    PushRejectedError,
    ToolMissingError,
    UnreachableError,
)
from conveyor.process import ProcessResult
from conveyor.process import run as run_child
from conveyor.process.conversation import Conversation, conversation
from conveyor.secrets import Redactor, Secret

TOKEN_VARIABLE = "CONVEYOR_GIT_TOKEN"  # noqa: S105 - a variable name, not a secret
USERNAME_VARIABLE = "CONVEYOR_GIT_USERNAME"
# a shell function run by git as credential helper: it reads the token from
# the environment at the moment git asks, so the value is in no file or argv;
# printf, not echo: dash's echo reads backslashes in the token as escapes
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf \'%s\\n\' "username=${{{USERNAME_VARIABLE}}}" "password=${{{TOKEN_VARIABLE}}}"; }}; f'
)
PUSH_SHIELD = 30.0
"""Seconds a push under way may still take once the run is cancelled: it lands or fails."""

_AUTH_SIGNS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "permission denied (publickey",
    "http basic: access denied",
    "invalid username or password",
    "returned error: 401",
    "returned error: 403",
    "terminal prompts disabled",
)
_UNREACHABLE_SIGNS = (
    "could not resolve host",
    "failed to connect",
    "connection refused",
    "connection timed out",
    "operation timed out",
    "network is unreachable",
    "no route to host",
    "could not read from remote repository",
    "does not appear to be a git repository",
    "unable to access",
    "connection reset",
    "' does not exist",
    "' not found",
)

_LOST_RACE_SIGNS = (
    "cannot lock ref",
    "failed to update ref",
    "incorrect old value provided",
    "failed to lock",
)


@dataclass(frozen=True)
class GitAuth:
    """How git authenticates to the remote."""

    token: Secret | None = None
    username: str = "x-access-token"
    ssh_key: Path | None = None
    known_hosts: Path | None = None

    @classmethod
    def from_env(
        cls,
        token_env: str | None,
        env: Mapping[str, str] | None = None,
        *,
        username: str = "x-access-token",
    ) -> GitAuth:
        """A token read from the variable ``token_env`` (no token when ``None``).

        Raises:
            ConfigError: the variable is not set.
        """
        token = Secret.from_env(token_env, env) if token_env else None
        return cls(token=token, username=username)

    def environment(self) -> dict[str, str]:
        """The variables that hand these credentials to a git child process."""
        env: dict[str, str] = {}
        if self.token is not None:
            env.update(
                {
                    "GIT_CONFIG_COUNT": "2",
                    # an empty helper first: forget helpers from the user's config
                    "GIT_CONFIG_KEY_0": "credential.helper",
                    "GIT_CONFIG_VALUE_0": "",
                    "GIT_CONFIG_KEY_1": "credential.helper",
                    "GIT_CONFIG_VALUE_1": _HELPER,
                    TOKEN_VARIABLE: self.token.reveal(),
                    USERNAME_VARIABLE: self.username,
                }
            )
        if self.ssh_key is not None:
            command = [
                "ssh",
                "-i",
                str(self.ssh_key),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
            ]
            if self.known_hosts is not None:
                command += [
                    "-o",
                    f"UserKnownHostsFile={self.known_hosts}",
                    "-o",
                    "StrictHostKeyChecking=yes",
                ]
            env["GIT_SSH_COMMAND"] = shlex.join(command)
        return env


@dataclass(frozen=True)
class GitObject:
    """One object read from the object store: its type and raw content."""

    type: str
    data: bytes


@dataclass(frozen=True)
class Commit:
    """A commit's full id and the id of its tree (what it holds, whatever its history)."""

    sha: str
    tree: str


class PushOutcome(StrEnum):
    PUSHED = "pushed"
    UP_TO_DATE = "up-to-date"
    NON_FAST_FORWARD = "non-fast-forward"


class Git:
    """Git commands against one remote, with credentials and error translation.

    Args:
        remote: The repository URL or path (shown redacted in messages).
        auth: Credentials, or ``None`` for none.
        binary: The git executable.
        timeout: Seconds any one command may take.
    """

    def __init__(
        self,
        remote: str,
        *,
        auth: GitAuth | None = None,
        binary: str = "git",
        timeout: float = 300.0,
    ) -> None:
        self.remote = remote
        self.auth = auth or GitAuth()
        self.timeout = timeout
        self.redact = Redactor([self.auth.token] if self.auth.token else [])
        found = shutil.which(binary)
        if found is None:
            raise ToolMissingError("git", hint="install git, e.g. 'apt-get install git'")
        self.binary = found

    @property
    def shown_remote(self) -> str:
        """The remote as it may appear in messages."""
        return self.redact(self.remote)

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GIT_CONFIG_", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
        }
        env.update(
            {
                "GIT_TERMINAL_PROMPT": "0",
                "LC_ALL": "C",
                "LANGUAGE": "C",
            }
        )
        # an inherited askpass program would prompt or leak; the helper answers instead
        env.pop("GIT_ASKPASS", None)
        env.pop("SSH_ASKPASS", None)
        env.update(self.auth.environment())
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        branch: str = "",
        check: bool = True,
        shield: float | None = None,
    ) -> ProcessResult:
        """Run ``git ARGS``; a non-zero exit raises the matching error when ``check``.

        Args:
            shield: Seconds the command may go on once the caller is
                cancelled (``None``: it is killed at once).

        Raises:
            UnreachableError: the remote did not answer (or the command timed out).
            GitAuthError: the remote refused the credentials.
            CommandFailedError: any other failure.
        """
        shown = ["git", *(self.redact(a) for a in args)]
        try:
            done = run_child(
                [self.binary, *args],
                environ=self._env(env),
                cwd=cwd,
                stdin=None if stdin is None else stdin.encode("utf-8"),
                timeout=self.timeout,
                shield=shield,
                check=False,
                redactor=self.redact,
                # bytes decoded so: file contents (cat-file) come back byte for byte
                stdout_errors="surrogateescape",
            )
        except CommandTimeoutError as error:
            raise UnreachableError(
                "git remote",
                self.shown_remote,
                f"'{' '.join(shown)}' did not finish within {self.timeout:g}s",
                hint="check the network and the remote URL",
            ) from error
        if check and done.exit_code != 0:
            raise self.error(shown, done.exit_code, done.stderr, branch=branch)
        return done

    def error(self, shown: Sequence[str], code: int, stderr: str, *, branch: str = "") -> Exception:
        """The error a failed command means, with secrets redacted."""
        stderr = self.redact(stderr)
        lowered = stderr.lower()
        last = _last_line(stderr)
        if any(sign in lowered for sign in _AUTH_SIGNS):
            return GitAuthError(self.shown_remote, branch, last)
        if "remote branch" in lowered and "not found" in lowered:
            return CommandFailedError(
                shown, code, stderr, hint="check gitops.branch: the branch must exist on the remote"
            )
        if any(sign in lowered for sign in _UNREACHABLE_SIGNS):
            return UnreachableError(
                "git remote",
                self.shown_remote,
                last,
                hint="check the URL in gitops.repo, the network, and that the repository exists",
            )
        return CommandFailedError(shown, code, stderr)

    # -- operations ------------------------------------------------------------

    def clone(
        self, destination: Path, branch: str, *, depth: int | None = 1, checkout: bool = True
    ) -> None:
        """Clone only ``branch`` (shallow when ``depth``) into ``destination``.

        With ``checkout=False`` no file is written to the work tree: read the
        objects with :meth:`objects`, or choose the paths with
        :meth:`sparse_checkout` and then :meth:`checkout`.
        """
        # no template: the sample hooks and info files are never used (commits skip hooks)
        # and a temporary clone with fewer files is quicker to make and to remove
        args = ["clone", "--quiet", "--template=", "--single-branch", "--branch", branch]
        args.append("--no-tags")
        if depth is not None:
            args += ["--depth", str(depth)]
        if not checkout:
            args.append("--no-checkout")
        self.run([*args, "--", self.remote, str(destination)], branch=branch)

    def sparse_checkout(self, cwd: Path, directories: Iterable[str]) -> None:
        """Limit the work tree to ``directories`` (cone mode: each one with all it holds).

        Files directly in the repository root and in the directories' parents
        are part of every cone.  Takes effect at once in a checked-out clone,
        at the next :meth:`checkout` in one cloned without a checkout; a later
        :meth:`reset_hard` keeps the limit.
        """
        listed = "".join(f"{d}\n" for d in sorted(set(directories)))
        self.run(["sparse-checkout", "set", "--cone", "--stdin"], cwd=cwd, stdin=listed)

    def sparse_disable(self, cwd: Path) -> None:
        """Check out every file again (local changes to checked-out files are kept)."""
        self.run(["sparse-checkout", "disable"], cwd=cwd)

    def checkout(self, cwd: Path) -> None:
        """Write the current branch's files (within the sparse limit, if any) to the work tree."""
        self.run(["checkout", "--quiet"], cwd=cwd)

    def objects(self, cwd: Path, names: Sequence[str]) -> list[GitObject | None]:
        """Read objects by name (``REV:PATH``, a SHA...) in one ``git cat-file --batch``.

        Within :meth:`reading` for ``cwd`` the batch goes to that block's
        long-lived process; otherwise one process reads it and ends.

        Returns:
            One entry per name, in order: the object, or ``None`` when there is
            no such object (or the name cannot be asked: it holds a newline).
        """
        asked = [name for name in names if "\n" not in name]
        if not asked:
            return [None] * len(names)
        request = "".join(f"{n}\n" for n in asked)
        reader = _READERS.get().get(os.path.abspath(cwd))
        if reader is not None:
            data = reader.ask(request.encode("utf-8"), len(asked))
        else:
            out = self.run(["cat-file", "--batch"], cwd=cwd, stdin=request).stdout
            data = out.encode("utf-8", "surrogateescape")
        found = iter(_batch_objects(data))
        return [next(found) if "\n" not in name else None for name in names]

    @contextmanager
    def reading(self, cwd: Path) -> Iterator[None]:
        """Within the block, :meth:`objects` in ``cwd`` asks one lasting ``git cat-file --batch``.

        The process starts at the first read (a clone made inside the block
        is fine) and ends with the block: waited for when the block ends
        normally, killed with its group when it is left by an error or a
        cancellation.  A fetch or reset in ``cwd`` ends it; the next read
        starts another, which sees the new objects and ``HEAD``.  Reads by
        another :class:`Git` in the same thread (and ``cwd``) use it too.
        """
        with contextlib.ExitStack() as stack:
            reader = _ObjectReader(self, cwd, stack)
            key = os.path.abspath(cwd)
            token = _READERS.set({**_READERS.get(), key: reader})
            try:
                yield
            finally:
                _READERS.reset(token)

    def _restart_reader(self, cwd: Path) -> None:
        reader = _READERS.get().get(os.path.abspath(cwd))
        if reader is not None:
            reader.stop()

    def fetch(self, cwd: Path, branch: str, *, depth: int | None = 1) -> str:
        """Fetch the tip of ``branch``; returns its commit."""
        args = ["fetch", "--quiet", "--no-tags"]
        if depth is not None:
            args += ["--depth", str(depth)]
        self._restart_reader(cwd)
        self.run(
            [*args, "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}"],
            cwd=cwd,
            branch=branch,
        )
        return self.rev_parse(cwd, f"refs/remotes/origin/{branch}")

    def deepen(self, cwd: Path, branch: str, by: int) -> None:
        """Fetch ``by`` more commits of history below the current shallow boundary."""
        self._restart_reader(cwd)
        self.run(
            ["fetch", "--quiet", "--no-tags", f"--deepen={by}", "origin", f"refs/heads/{branch}"],
            cwd=cwd,
            branch=branch,
        )

    def is_shallow(self, cwd: Path) -> bool:
        """Whether the clone lacks older history."""
        out = self.run(["rev-parse", "--is-shallow-repository"], cwd=cwd).stdout.strip()
        return out == "true"

    def reset_hard(self, cwd: Path, commit: str) -> None:
        """Make the work tree and index exactly ``commit``, dropping local changes."""
        self._restart_reader(cwd)
        self.run(["reset", "--quiet", "--hard", commit], cwd=cwd)
        self.run(["clean", "-q", "-f", "-d"], cwd=cwd)

    def rev_parse(self, cwd: Path, rev: str) -> str:
        """The commit ``rev`` names."""
        return self.run(["rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=cwd).stdout.strip()

    def status(self, cwd: Path) -> str:
        """``git status --porcelain`` (empty when nothing changed)."""
        return self.run(["status", "--porcelain", "--untracked-files=all"], cwd=cwd).stdout

    def head(self, cwd: Path) -> Commit:
        """The commit ``HEAD`` names and its tree, in one process."""
        out = self.run(["rev-parse", "HEAD^{commit}", "HEAD^{tree}"], cwd=cwd)
        commit, tree = out.stdout.split()
        return Commit(commit, tree)

    def tip(self, branch: str) -> str | None:
        """The commit ``branch`` of the remote holds (``git ls-remote``, no clone), or ``None``.

        Raises:
            UnreachableError, GitAuthError: the remote did not answer, or refused.
        """
        ref = f"refs/heads/{branch}"
        out = self.run(["ls-remote", "--", self.remote, ref], branch=branch).stdout
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:
                return sha
        return None

    def commit(
        self, cwd: Path, paths: Sequence[str], message: str, *, name: str, email: str
    ) -> Commit:
        """Commit ``paths`` (tracked files) with ``message`` as ``name <email>``; the new commit."""
        identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        # paths after '--': exactly their work-tree content is committed (no 'git add' first)
        self.run(
            [
                *("-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-F", "-"),
                *("--only", "--", *paths),
            ],
            cwd=cwd,
            env=identity,
            stdin=message,
        )
        return self.head(cwd)

    def push(self, cwd: Path, branch: str) -> PushOutcome:
        """Push ``HEAD`` to ``branch`` (never forced).

        Returns:
            ``PUSHED``/``UP_TO_DATE``, or ``NON_FAST_FORWARD`` when the remote
            moved on (fetch, re-apply, push again).

        Raises:
            GitAuthError: the credentials were refused.
            PushRejectedError: the remote refused for another reason (a hook,
                a protected branch).
        """
        shown = ["git", "push", "--porcelain", "origin", f"HEAD:refs/heads/{branch}"]
        done = self.run(
            ["push", "--porcelain", "origin", f"HEAD:refs/heads/{branch}"],
            cwd=cwd,
            branch=branch,
            check=False,
            # a push under way lands (and is reported) or fails; it is never cut half-way
            shield=PUSH_SHIELD,
        )
        out = self.redact(done.stdout)
        for line in out.splitlines():
            flag, _, rest = line.partition("\t")
            if flag == "!" and "[rejected]" in rest:
                return PushOutcome.NON_FAST_FORWARD
            if flag == "!" and any(sign in rest + done.stderr for sign in _LOST_RACE_SIGNS):
                # another push won the ref update between our check and our write
                return PushOutcome.NON_FAST_FORWARD
            if flag == "!":
                stderr = self.redact(done.stderr)
                remote_lines = [
                    s[len("remote:") :].strip()
                    for s in stderr.splitlines()
                    if s.startswith("remote:") and s[len("remote:") :].strip()
                ]
                summary = rest.rsplit("\t", 1)[-1]
                reason = summary[summary.find("(") + 1 : summary.rfind(")")] or summary
                detail = "; ".join([reason, *remote_lines[-3:]])
                if any(sign in stderr.lower() for sign in _AUTH_SIGNS):
                    raise GitAuthError(self.shown_remote, branch, detail)
                raise PushRejectedError(
                    self.shown_remote,
                    branch,
                    detail,
                    hint="the branch may be protected: promote through a pull request, "
                    "or allow this identity to push",
                )
            if flag == "=":
                return PushOutcome.UP_TO_DATE
        if done.exit_code != 0:
            raise self.error(shown, done.exit_code, done.stderr, branch=branch)
        return PushOutcome.PUSHED


class _ObjectReader:
    """The long-lived ``git cat-file --batch`` of one :meth:`Git.reading` block."""

    def __init__(self, git: Git, cwd: Path, block: contextlib.ExitStack) -> None:
        self.git = git
        self.cwd = cwd
        self.block = block
        self.running: tuple[contextlib.ExitStack, Conversation] | None = None

    def ask(self, request: bytes, count: int) -> bytes:
        """The batch output for ``count`` object names (one a line in ``request``)."""
        if self.running is None:
            own = contextlib.ExitStack()
            # the block's end ends the process (killed if the block is left by an error)
            self.block.push(own.__exit__)
            talk = own.enter_context(
                conversation(
                    [self.git.binary, "cat-file", "--batch"],
                    environ=self.git._env(None),
                    cwd=self.cwd,
                    timeout=self.git.timeout,
                    redactor=self.git.redact,
                )
            )
            self.running = (own, talk)
        own, talk = self.running
        try:
            return talk.exchange(request, functools.partial(_batch_end, count=count))
        except (CommandTimeoutError, CommandFailedError) as error:
            # the process has ended (killed, or exited): the next read starts another
            self.running = None
            with contextlib.suppress(CommandFailedError):
                own.close()
            raise self._translated(error) from error
        except BaseException:
            self.running = None
            own.__exit__(*sys.exc_info())  # a cancellation: the child is killed with its group
            raise

    def _translated(self, error: CommandFailedError | CommandTimeoutError) -> Exception:
        shown = ["git", "cat-file", "--batch"]
        if isinstance(error, CommandTimeoutError):
            return UnreachableError(
                "git",
                str(self.cwd),
                f"'{' '.join(shown)}' did not answer within {self.git.timeout:g}s",
                hint="check the machine's load and the clone's disk",
            )
        return self.git.error(shown, error.exit_code, error.stderr)

    def stop(self) -> None:
        """End the process now (it has answered everything asked); the next read starts one."""
        if self.running is not None:
            own, _ = self.running
            self.running = None
            own.close()


_READERS: contextvars.ContextVar[Mapping[str, _ObjectReader]] = contextvars.ContextVar(
    "conveyor_git_readers", default=MappingProxyType({})
)
"""The :meth:`Git.reading` blocks open in this context, by clone directory."""


def _batch_end(data: bytes, count: int) -> int | None:
    """Where the output for ``count`` names ends in ``git cat-file --batch`` output, if it does."""
    at = 0
    for _ in range(count):
        header_end = data.find(b"\n", at)
        if header_end < 0:
            return None
        header = data[at:header_end].split()
        if header and header[-1] in (b"missing", b"ambiguous"):
            at = header_end + 1
            continue
        at = header_end + 1 + int(header[-1]) + 1
        if at > len(data):
            return None
    return at


def _batch_objects(data: bytes) -> list[GitObject | None]:
    """Split ``git cat-file --batch`` output (``None`` for a missing object)."""
    objects: list[GitObject | None] = []
    at = 0
    while at < len(data):
        header_end = data.index(b"\n", at)
        header = data[at:header_end].decode("utf-8", "replace").split()
        if header[-1] in ("missing", "ambiguous"):
            objects.append(None)
            at = header_end + 1
            continue
        kind, size = header[-2], int(header[-1])
        objects.append(GitObject(kind, data[header_end + 1 : header_end + 1 + size]))
        at = header_end + 1 + size + 1
    return objects


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
