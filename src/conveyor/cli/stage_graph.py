"""What ``conveyor graph`` and ``plan`` describe: the pipeline of a configuration, drawn.

Typer-free, so that the console script can draw the graph without loading
typer (:mod:`conveyor.cli.entry`); :mod:`conveyor.cli.graph` holds the typer
commands, which call the same functions.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conveyor.config.models import Config
    from conveyor.pipeline.graph import Pipeline
    from conveyor.stages.context import DeliveryContext


class GraphFormat(StrEnum):
    TREE = "tree"
    MERMAID = "mermaid"
    DOT = "dot"
    JSON = "json"


def delivery_graph(
    config: Path | None,
    sha: str | None,
    changed_since: str | None = None,
    changes: bool = False,
    image: list[str] | None = None,
) -> tuple[Config, str, Pipeline, DeliveryContext]:
    """The configuration, the commit, the pipeline it describes and its context (nothing runs).

    ``sha=None`` resolves the source's commit (``plan`` names it); ``graph``
    passes a placeholder and so needs no git.  ``changes`` looks up which
    files changed since ``changed_since`` (or the base CI names); ``image``
    selects images (``--image``).
    """
    from conveyor.changes import UNKNOWN
    from conveyor.cli.common import load, selected_images
    from conveyor.engines.unavailable import NoEngine
    from conveyor.stages.context import DeliveryContext
    from conveyor.stages.delivery import delivery_pipeline

    cfg = load(config)
    if sha is None:
        from conveyor.stages.source import resolve_sha

        sha = resolve_sha(cfg.resolve(cfg.app.source))
    found = UNKNOWN
    if changes:
        from conveyor.changes import detect

        found = detect(cfg.root, sha, changed_since)
    ctx = DeliveryContext(
        cfg,
        NoEngine(),
        sha,
        cfg.root / ".conveyor" / "plan",
        changes=found,
        images=selected_images(cfg, image),
    )
    return cfg, sha, delivery_pipeline(ctx), ctx


def draw(config: Path | None, format: GraphFormat) -> None:
    """Print the stage graph of ``config`` (the nearest one when ``None``) in ``format``."""
    from conveyor.pipeline import render

    _, _, pipeline, _ = delivery_graph(config, sha="0" * 40)
    if format is GraphFormat.TREE:
        width, colour = terminal()
        print(render.to_tree(pipeline, "conveyor pipeline", width=width, dim=colour), end="")
        return
    renderers = {"mermaid": render.to_mermaid, "dot": render.to_dot, "json": render.to_json}
    print(renderers[format.value](pipeline), end="")


def terminal() -> tuple[int, bool]:
    """The width to draw at and whether colour is shown, decided as rich decides them.

    ``COLUMNS`` or the terminal's width (80 when not a terminal); colour on a
    terminal that is not ``TERM=dumb`` unless ``NO_COLOR`` is set, and always
    with ``FORCE_COLOR``.
    """
    import os
    import sys

    environ = os.environ
    try:
        width = int(environ["COLUMNS"])
    except (KeyError, ValueError):
        width = 80
        if sys.stdout.isatty():
            width = os.get_terminal_size(sys.stdout.fileno()).columns
    if environ.get("FORCE_COLOR"):
        return width, True
    on_terminal = sys.stdout.isatty() and environ.get("TERM", "").lower() not in {"dumb", "unknown"}
    return width, on_terminal and not environ.get("NO_COLOR")
