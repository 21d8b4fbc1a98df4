"""A double of the kubectl container DaggerRenderer asks the engine to run.

It answers the ``stdout`` of the renderer's query the way the container
would: it copies what the query mounts (the ``currentModule.workdir`` path
under the module's working directory, less its excludes) to a directory of its
own and runs the host's real ``kubectl kustomize`` on the path the exec
arguments name inside it -- so a kustomization that reaches outside the mount
fails as it would in the container.  Queries that are not the renderer's get
``other`` (the stdout of any other exec in the same run).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphql
from dagger_query import DaggerApiDouble

from conveyor.engines.dagger_render import MOUNT
from conveyor.gitops.renderer import render


def calls(query: str, field_name: str) -> list[dict[str, Any]]:
    """The arguments of every ``field_name`` call in one query's text."""
    found: list[dict[str, Any]] = []

    def walk(selection_set: graphql.SelectionSetNode | None) -> None:
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, graphql.FieldNode) and node.name.value == field_name:
                args = node.arguments or ()
                found.append({a.name.value: graphql.value_from_ast_untyped(a.value) for a in args})
            if isinstance(node, graphql.FieldNode | graphql.InlineFragmentNode):
                walk(node.selection_set)

    for definition in graphql.parse(query).definitions:
        assert isinstance(definition, graphql.OperationDefinitionNode)
        walk(definition.selection_set)
    return found


def kubectl_container_double(
    double: DaggerApiDouble, workdir: Path, other: str = ""
) -> Callable[[graphql.FieldNode], str]:
    """The ``stdout`` answer of ``double``: the host's ``kubectl kustomize`` on what is mounted.

    Args:
        double: The Dagger API double whose last query is being answered.
        workdir: The module's working directory, where ``currentModule.workdir``
            paths start.
        other: The answer to any other query's ``stdout``.
    """

    def answer(node: graphql.FieldNode) -> str:
        query = double.documents[-1]
        if "kustomize" not in query:
            return other
        (mount,) = calls(query, "withMountedDirectory")
        (exec_,) = calls(query, "withExec")
        # the mounted directory's ID was made by currentModule.workdir(path:, exclude:)
        (tree,) = calls(double.ids[mount["source"]], "workdir")
        assert double.made_by(mount["source"], "currentModule")
        assert mount["path"] == MOUNT
        binary, verb, target = exec_["args"]
        assert (binary, verb) == ("kubectl", "kustomize")
        with tempfile.TemporaryDirectory(prefix="kubectl-container-") as root:
            mounted = Path(root) / MOUNT.lstrip("/")
            shutil.copytree(
                workdir / tree["path"],
                mounted,
                ignore=shutil.ignore_patterns(*tree.get("exclude", [])),
            )
            assert not (mounted / ".git").exists()
            return render(mounted / Path(target).relative_to(MOUNT))

    return answer
