"""Drawing a pipeline: as Mermaid, Graphviz dot, JSON or a terminal tree (plain text)."""

from __future__ import annotations

import json
import textwrap

from conveyor.pipeline.graph import Pipeline


def _groups(pipeline: Pipeline) -> dict[str, list[str]]:
    """The stages of each group (an image's stages), in pipeline order; ``""``: ungrouped."""
    groups: dict[str, list[str]] = {}
    for name in pipeline.order:
        groups.setdefault(pipeline[name].group, []).append(name)
    return groups


def to_mermaid(pipeline: Pipeline) -> str:
    """A Mermaid flowchart; the stages of one image in a subgraph ``image <name>``."""
    lines = ["flowchart LR"]
    for group, names in _groups(pipeline).items():
        indent = "    " if not group else "        "
        if group:
            lines.append(f'    subgraph image_{_id(group)}["image {group}"]')
        for name in names:
            stage = pipeline[name]
            label = f"{name}{' (always)' if stage.always else ''}"
            lines.append(f'{indent}{_id(name)}["{label}"]')
        if group:
            lines.append("    end")
    for name in pipeline.order:
        lines.extend(f"    {_id(dep)} --> {_id(name)}" for dep in pipeline[name].needs)
    for name in pipeline.order:
        for index, service in enumerate(pipeline[name].services):
            node = f"{_id(name)}__service{index}"
            lines.append(f'    {node}[("{service}")] -.- {_id(name)}')
    return "\n".join(lines) + "\n"


def to_dot(pipeline: Pipeline) -> str:
    lines = ["digraph conveyor {", "    rankdir=LR;", "    node [shape=box];"]
    for group, names in _groups(pipeline).items():
        indent = "    " if not group else "        "
        if group:
            lines.append(f'    subgraph "cluster_{group}" {{')
            lines.append(f'        label="image {group}";')
        for name in names:
            style = ", style=dashed" if pipeline[name].always else ""
            lines.append(f'{indent}"{name}" [label="{name}"{style}];')
        if group:
            lines.append("    }")
    for name in pipeline.order:
        lines.extend(f'    "{dep}" -> "{name}";' for dep in pipeline[name].needs)
    for name in pipeline.order:
        for index, service in enumerate(pipeline[name].services):
            node = f"{name}/service{index}"
            lines.append(f'    "{node}" [label="{service}", shape=cylinder, style=dashed];')
            lines.append(f'    "{node}" -> "{name}" [style=dashed, arrowhead=none];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(pipeline: Pipeline) -> str:
    stages = [
        {
            "name": name,
            "needs": list(pipeline[name].needs),
            "always": pipeline[name].always,
            "timeout": pipeline[name].timeout,
            "retries": pipeline[name].retries,
            "description": pipeline[name].description,
            "services": list(pipeline[name].services),
            "skipped": pipeline[name].skip_reason,
            **({"image": pipeline[name].group} if pipeline[name].group else {}),
        }
        for name in pipeline.order
    ]
    return json.dumps({"stages": stages}, indent=2) + "\n"


def to_tree(
    pipeline: Pipeline, title: str = "pipeline", *, width: int = 80, dim: bool = False
) -> str:
    """Each stage once, under the last stage it needs (the others are named beside it).

    Drawn with the guides of ``tree(1)`` and wrapped at ``width`` columns; the
    notes and descriptions are dimmed with an ANSI code when ``dim`` (a terminal
    that shows colour).  Plain text, so that ``conveyor graph`` needs no rich.
    """
    position = {name: index for index, name in enumerate(pipeline.order)}
    children: dict[str | None, list[str]] = {None: []}
    labels: dict[str, str] = {}
    for name in pipeline.order:
        stage = pipeline[name]
        parent = max(stage.needs, key=position.__getitem__) if stage.needs else None
        children.setdefault(parent, []).append(name)
        children[name] = []
        notes = []
        others = [n for n in stage.needs if n != parent]
        if others:
            notes.append(f"also needs {', '.join(others)}")
        if stage.always:
            notes.append("always runs")
        if stage.services:
            notes.append(f"with {', '.join(stage.services)}")
        if stage.skip_reason:
            notes.append(f"skipped: {stage.skip_reason}")
        labels[name] = " ".join(
            part
            for part in (
                f"({'; '.join(notes)})" if notes else "",
                f"- {stage.description}" if stage.description else "",
            )
            if part
        )
    lines = [title]

    def shaded(text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if dim and text else text

    def draw(parent: str | None, prefix: str) -> None:
        kids = children[parent]
        for number, name in enumerate(kids):
            last = number == len(kids) - 1
            guide, below = ("└── ", "    ") if last else ("├── ", "│   ")
            room = max(width - len(prefix) - len(guide), 20)
            rows = textwrap.wrap(f"{name} {labels[name]}".rstrip(), room, break_on_hyphens=False)
            first = rows[0][len(name) :]
            lines.append(f"{prefix}{guide}{name}{first[:1]}{shaded(first[1:])}")
            lines.extend(f"{prefix}{below}{shaded(row)}" for row in rows[1:])
            draw(name, prefix + below)

    draw(None, "")
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
