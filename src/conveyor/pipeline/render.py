"""Drawing a pipeline: as Mermaid, Graphviz dot, JSON or a terminal tree."""

from __future__ import annotations

import json

from rich.tree import Tree

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


def to_tree(pipeline: Pipeline, title: str = "pipeline") -> Tree:
    """Each stage once, under the last stage it needs (the others are named beside it)."""
    tree = Tree(title)
    position = {name: index for index, name in enumerate(pipeline.order)}
    nodes: dict[str, Tree] = {}
    for name in pipeline.order:
        stage = pipeline[name]
        parent = max(stage.needs, key=position.__getitem__) if stage.needs else None
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
        label = name + (f" [dim]({'; '.join(notes)})[/]" if notes else "")
        if stage.description:
            label += f" [dim]- {stage.description}[/]"
        nodes[name] = (nodes[parent] if parent else tree).add(label)
    return tree


def _id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
