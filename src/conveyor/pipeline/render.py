"""Drawing a pipeline: as Mermaid, Graphviz dot, JSON or a terminal tree."""

from __future__ import annotations

import json

from rich.tree import Tree

from conveyor.pipeline.graph import Pipeline


def to_mermaid(pipeline: Pipeline) -> str:
    lines = ["flowchart LR"]
    for name in pipeline.order:
        stage = pipeline[name]
        label = f"{name}{' (always)' if stage.always else ''}"
        lines.append(f'    {_id(name)}["{label}"]')
    for name in pipeline.order:
        lines.extend(f"    {_id(dep)} --> {_id(name)}" for dep in pipeline[name].needs)
    return "\n".join(lines) + "\n"


def to_dot(pipeline: Pipeline) -> str:
    lines = ["digraph conveyor {", "    rankdir=LR;", "    node [shape=box];"]
    for name in pipeline.order:
        style = ", style=dashed" if pipeline[name].always else ""
        lines.append(f'    "{name}" [label="{name}"{style}];')
    for name in pipeline.order:
        lines.extend(f'    "{dep}" -> "{name}";' for dep in pipeline[name].needs)
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
        }
        for name in pipeline.order
    ]
    return json.dumps({"stages": stages}, indent=2) + "\n"


def to_tree(pipeline: Pipeline, title: str = "pipeline") -> Tree:
    """Stages under the stages they need; a stage with several needs appears under each."""
    tree = Tree(title)

    def add(node: Tree, name: str, path: tuple[str, ...]) -> None:
        stage = pipeline[name]
        extra = [f"needs {', '.join(stage.needs)}"] if len(stage.needs) > 1 else []
        if stage.always:
            extra.append("always")
        label = name + (f" [dim]({'; '.join(extra)})[/]" if extra else "")
        if stage.description:
            label += f" [dim]- {stage.description}[/]"
        child = node.add(label)
        for dependent in pipeline.dependents(name):
            if dependent not in path:
                add(child, dependent, (*path, name))

    for name in pipeline.order:
        if not pipeline[name].needs:
            add(tree, name, ())
    return tree


def _id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
