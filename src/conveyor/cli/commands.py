"""The command table: every ``conveyor`` command, where it lives and its help line.

Plain data, importing nothing: the console script answers ``conveyor --help``
and ``--version`` from it without loading typer (:mod:`conveyor.cli.entry`),
and :mod:`conveyor.cli.app` registers the same commands lazily from it.
tests/cli/test_app_lazy.py checks each help line against the command's own
docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT_HELP = "GitOps CI pipeline as code: test, build, scan, publish, manifest update, smoke test."
VERSION_HELP = "Show the version and exit."
HELP_HELP = "Show this message and exit."
USAGE = "Usage: conveyor [OPTIONS] COMMAND [ARGS]..."


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives (a function, or a ``typer.Typer`` of sub-commands)."""

    module: str
    attribute: str
    help: str


COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand(
        "conveyor.cli.run",
        "run",
        "Run the pipeline: test, build, scan, smoke, publish, manifest (and verify, policy).",
    ),
    "graph": LazyCommand(
        "conveyor.cli.graph",
        "graph",
        "Show the stage graph (a terminal tree, or Mermaid, dot, JSON).",
    ),
    "plan": LazyCommand(
        "conveyor.cli.graph",
        "plan",
        "Show what would run, with every reference resolved; nothing is built or pushed.",
    ),
    "doctor": LazyCommand(
        "conveyor.cli.doctor",
        "doctor",
        "Check tools, engines, configuration, registry and manifest repository.",
    ),
    "init": LazyCommand(
        "conveyor.cli.init",
        "init",
        "Generate conveyor.toml and the CI file that runs the pipeline.",
    ),
    "promote": LazyCommand(
        "conveyor.cli.promote",
        "promote",
        "Promote the image one environment runs to another.",
    ),
    "rollback": LazyCommand(
        "conveyor.cli.rollback",
        "rollback",
        "Roll an environment back to an image it ran before.",
    ),
    "trace": LazyCommand(
        "conveyor.cli.trace", "app", "Show recorded runs and their spans (from .conveyor/runs)."
    ),
    "manifest": LazyCommand(
        "conveyor.cli.manifest",
        "app",
        "Edit manifests: set an image locally or update an environment.",
    ),
    "policy": LazyCommand(
        "conveyor.cli.policy", "app", "Check manifests against the image policy."
    ),
    "report": LazyCommand("conveyor.cli.report", "app", "Convert a run's reports for a CI system."),
}
