"""``conveyor --help``: the root help, drawn with rich alone (no typer, no command module).

The root group's help is drawn here for both ways in: the console script's
fast path (:mod:`conveyor.cli.entry`, which answers before typer is even
imported) and typer's own ``--help`` handling (``LazyGroup.format_help``).
It follows typer's rich layout (its styles, panels and highlighters), so
the listing looks like every command's own ``--help``;
tests/cli/test_listing.py checks it against typer's drawing of the same
group, character for character, with and without colour.
"""

from __future__ import annotations

import os
from typing import IO

from rich.align import Align
from rich.columns import Columns
from rich.console import Console
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from conveyor.cli.commands import COMMANDS, HELP_HELP, ROOT_HELP, USAGE, VERSION_HELP

OPTIONS = (("--version", VERSION_HELP), ("--help", HELP_HELP))
"""The root group's options, each a flag."""

# typer's styles (typer.rich_utils), for the same look as the commands' help
_THEME = {
    "option": "bold cyan",
    "switch": "bold green",
    "negative_option": "bold magenta",
    "negative_switch": "bold red",
    "types": "bold yellow",
    "types_sep": "dim",
    "usage": "yellow",
}


class _OptionHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012 - rich's RegexHighlighter API is a class attribute
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _TypesHighlighter(RegexHighlighter):
    highlights = [  # noqa: RUF012 - rich's RegexHighlighter API is a class attribute
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


def console(file: IO[str] | None = None) -> Console:
    """A console set up as typer sets up its own (the same environment variables count)."""
    width = os.environ.get("TERMINAL_WIDTH")
    force = bool(
        os.environ.get("GITHUB_ACTIONS")
        or os.environ.get("FORCE_COLOR")
        or os.environ.get("PY_COLORS")
    )
    return Console(
        theme=Theme(_THEME),
        highlighter=_OptionHighlighter(),
        color_system="auto",
        force_terminal=False if os.environ.get("_TYPER_FORCE_DISABLE_TERMINAL") else force or None,
        width=int(width) if width else None,
        file=file,
    )


def print_root_help(out: Console | None = None) -> None:
    """Print ``conveyor --help``: usage, what Conveyor is, its options and commands."""
    out = out or console()
    highlight = _OptionHighlighter()
    out.print(Padding(highlight(USAGE), 1), style="bold")
    out.print(Padding(Align(highlight(Text.from_markup(ROOT_HELP)), pad=False), (0, 1, 1, 1)))

    options = Table(
        highlight=True, show_header=False, expand=True, box=None, show_lines=False,
        leading=0, border_style=None, row_styles=None, pad_edge=False, padding=(0, 1),
    )  # fmt: skip
    types = _TypesHighlighter()
    for name, text in OPTIONS:
        kind = types(Text("<bool>", style="bold yellow", overflow="fold"))
        options.add_row(
            highlight(name), "", "", "", kind, Columns([highlight(Text.from_markup(text))])
        )
    out.print(Panel(options, border_style="dim", title="Options", title_align="left"))

    commands = Table(
        highlight=False, show_header=False, expand=True, box=None, show_lines=False,
        leading=0, border_style=None, row_styles=None, pad_edge=False, padding=(0, 1),
    )  # fmt: skip
    commands.add_column(style="bold cyan", no_wrap=True, width=max(map(len, COMMANDS)))
    commands.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for name, entry in COMMANDS.items():
        commands.add_row(Text(name), highlight(Text.from_markup(entry.help)))
    out.print(Panel(commands, border_style="dim", title="Commands", title_align="left"))
