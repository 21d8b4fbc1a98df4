"""``conveyor manifest``: set an image in a kustomization, or update an environment.

``set-image DIR NAME=REF[@DIGEST]`` edits DIR's kustomization locally (no git),
like ``kustomize edit set image``, and checks with kustomize that the edit
changes what DIR renders.  ``update ENV REF@DIGEST`` clones the manifest
repository, sets the environment's image, commits and pushes exactly as the
pipeline's manifest stage does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli.promote import fail
from conveyor.cli.run import ConfigOption
from conveyor.errors import ConveyorError

app = typer.Typer(
    help="Edit manifests: set an image locally or update an environment.", no_args_is_help=True
)


EnableHelmOption = Annotated[
    bool,
    typer.Option(
        "--enable-helm",
        help="Render helmCharts (kustomize --enable-helm; helm must be on PATH).",
    ),
]


def _directory_argument(value: Path) -> Path:
    if value.is_file():
        raise typer.BadParameter(
            f"{str(value)!r} is a file; pass the directory that holds it ({value.parent})"
        )
    if not value.is_dir():
        raise typer.BadParameter(f"{str(value)!r} is not a directory")
    return value


def _image_argument(value: str) -> str:
    """A malformed NAME=REF[@DIGEST] is a usage error naming the bad part, not a policy one."""
    from conveyor.errors import InvalidReferenceError
    from conveyor.gitops.kustomization import ImageEdit

    try:
        ImageEdit.parse(value)
    except InvalidReferenceError as error:
        raise typer.BadParameter(f"{value!r}: {error.rule}") from None
    return value


def _reference_argument(value: str) -> str:
    """Text that is no image reference at all is a usage error; the policy judges the rest."""
    from conveyor.errors import InvalidReferenceError
    from conveyor.policy.reference import parse

    try:
        parse(value)
    except InvalidReferenceError as error:
        raise typer.BadParameter(f"{value!r}: {error.rule}") from None
    return value


@app.command("set-image")
def set_image(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Directory holding the kustomization.",
            callback=_directory_argument,
            metavar="DIR",
        ),
    ],
    image: Annotated[
        str,
        typer.Argument(
            callback=_image_argument,
            metavar="NAME=REF[@DIGEST]",
            help="As for 'kustomize edit set image': NAME=NEWNAME:TAG@DIGEST, NAME:TAG, "
            "NAME@DIGEST; '*' keeps a field.",
        ),
    ],
    enable_helm: EnableHelmOption = False,
) -> None:
    """Set an image in DIR's kustomization (local edit, no git).

    The edit is checked with kustomize: DIR (or, for a Component, every
    kustomization that includes it) must still render and a container must
    use the image.  A directory that cannot be rendered here (a remote base
    offline, helm absent) is edited with a warning saying what was not
    verified.
    """
    from conveyor.gitops.local_edit import set_image_locally

    try:
        done = set_image_locally(directory, image, enable_helm=enable_helm)
    except ConveyorError as error:
        fail(error)
    typer.echo(done.describe())


@app.command("update")
def update(
    env: Annotated[str, typer.Argument(help="The environment (a key of gitops.environments).")],
    image: Annotated[
        str,
        typer.Argument(
            callback=_reference_argument,
            metavar="REF@DIGEST",
            help="The pushed image, pinned by digest.",
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Set ENV's image in the manifest repository: clone, edit, commit, push."""
    try:
        typer.echo(_update(env, image, config))
    except ConveyorError as error:
        fail(error)


def _update(env_name: str, image: str, config_path: Path | None) -> str:
    from conveyor.cli.common import load
    from conveyor.errors import ConfigError
    from conveyor.gitops.git import GitAuth
    from conveyor.policy.rules import enforce
    from conveyor.stages.manifest import image_for, pin_environment

    config = load(config_path)
    gitops = config.gitops
    if gitops is None:
        raise ConfigError(config.root, "gitops", "is not configured; add a [gitops] section")
    if env_name not in gitops.environments:
        known = ", ".join(sorted(gitops.environments)) or "none defined"
        raise ConfigError(
            config.root, f"gitops.environments.{env_name}", f"does not exist (known: {known})"
        )
    ref = enforce(image, config.policy)
    warnings: list[str] = []
    result = pin_environment(
        config,
        env_name,
        [image_for(config, env_name, ref)],
        auth=GitAuth.from_env(gitops.token_env),
        warnings=warnings,
    )
    notes = "".join(f"\n  warning: not verified: {line}" for line in warnings)
    if not result.changed:
        return f"{env_name}: already at {ref.format()}; nothing to commit{notes}"
    assert result.commit is not None
    return (
        f"{env_name}: pushed {result.commit[:12]} to {gitops.branch} "
        f"({result.previous or '(not set)'} -> {ref.format()}, attempts: {result.attempts})"
        f"{notes}"
    )
