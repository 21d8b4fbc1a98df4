"""``conveyor rollback ENV``: propose an earlier image for an environment."""

from __future__ import annotations

from typing import Annotated

import typer

from conveyor.cli.promote import fail
from conveyor.cli.run import ConfigOption
from conveyor.errors import ConveyorError


def _digest_option(value: str | None) -> str | None:
    """A malformed --to is a usage error (the same pattern rollback itself checks)."""
    from conveyor.gitops.promotion import DIGEST

    if value is not None and not DIGEST.match(value):
        raise typer.BadParameter(f"{value!r} is not a digest; expected sha256:<64 hex digits>")
    return value


def rollback(
    env: Annotated[str, typer.Argument(help="The environment to roll back.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DIGEST",
            callback=_digest_option,
            help="The digest to go back to (sha256:...); default: --steps.",
        ),
    ] = None,
    steps: Annotated[
        int,
        typer.Option("--steps", min=1, metavar="N", help="How many image changes to go back."),
    ] = 1,
    config: ConfigOption = None,
) -> None:
    """Roll an environment back to an image it ran before.

    The image comes from the history of the environment's kustomization file
    and goes through the environment's normal path: a commit for staging, a
    pull (merge) request for production.  A rollback is itself a change of
    the image, so --steps 1 run twice goes back to where it started (like
    'kubectl rollout undo'); pass --to DIGEST to name the image instead.
    """
    from conveyor.cli.common import load
    from conveyor.gitops.promotion import rollback as run_rollback

    try:
        proposal = run_rollback(load(config), env, to_digest=to, steps=steps)
    except ConveyorError as error:
        fail(error)
    typer.echo(proposal.describe())
