"""``conveyor promote --from ENV --to ENV``: propose one environment's image for another."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from conveyor.cli.run import ConfigOption
from conveyor.errors import ConveyorError


def fail(error: ConveyorError) -> NoReturn:
    """Print ``error`` as ``conveyor`` does and exit with its code from the one table."""
    from conveyor.cli.exit_codes import exit_code_for

    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(int(exit_code_for(error)))


def promote(
    from_: Annotated[
        str,
        typer.Option(
            "--from", metavar="ENV", help="The environment whose pinned image is promoted."
        ),
    ],
    to: Annotated[str, typer.Option("--to", metavar="ENV", help="The environment to change.")],
    config: ConfigOption = None,
) -> None:
    """Promote the image one environment runs to another.

    A commit environment (staging) is updated by a direct commit; a
    pull-request environment (production) gets the branch
    conveyor/promote-<env>-<app> and a pull (merge) request, updated in place
    when run again.  The forge token comes from the variable named by
    gitops.forge.token_env (or gitops.token_env).
    """
    from conveyor.cli.common import load
    from conveyor.gitops.promotion import promote as run_promotion

    try:
        proposal = run_promotion(load(config), from_, to)
    except ConveyorError as error:
        fail(error)
    typer.echo(proposal.describe())
