"""Configuration: ``conveyor.toml`` or ``[tool.conveyor]`` into frozen models."""

from conveyor.config.loader import find_config, load_config, load_policy
from conveyor.config.models import Config

__all__ = ["Config", "find_config", "load_config", "load_policy"]
