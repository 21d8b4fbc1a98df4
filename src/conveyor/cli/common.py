"""What every command shares: loading the configuration, printing errors."""

from __future__ import annotations

from pathlib import Path

from conveyor.config import Config, find_config, load_config


def load(config: Path | None) -> Config:
    """The configuration at ``config``, or the nearest one above the current directory."""
    return load_config(config if config is not None else find_config(Path.cwd()))


def selected_images(config: Config, names: list[str] | None) -> frozenset[str] | None:
    """The images ``--image`` names (``None``: every image).

    Raises:
        typer.BadParameter: a name is not one of the configuration's images.
    """
    if not names:
        return None
    known = [spec.name for spec in config.image_specs()]
    for name in names:
        if name not in known:
            import typer  # only a command line has options to refuse

            raise typer.BadParameter(
                f"{name!r} is not an image of this pipeline (images: {', '.join(known)})",
                param_hint="'--image'",
            )
    return frozenset(names)
