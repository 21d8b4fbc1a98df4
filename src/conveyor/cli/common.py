"""What every command shares: loading the configuration, printing errors."""

from __future__ import annotations

from pathlib import Path

from conveyor.config import Config, find_config, load_config


def load(config: Path | None) -> Config:
    """The configuration at ``config``, or the nearest one above the current directory."""
    return load_config(config if config is not None else find_config(Path.cwd()))
