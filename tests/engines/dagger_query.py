"""A double of the Dagger engine's GraphQL API, for checking Dagger code offline.

The one test helper that touches dagger-io internals (pinned: dagger-io 0.21.11).
``DaggerApiDouble.client()`` is a real ``dagger.Client`` whose connection is
this double: dagger-io builds every query itself, exactly as it would for an
engine, and hands the document to :meth:`_Session.execute`, which

* validates it against the engine's real schema (Dagger v0.21.8) with
  graphql-core -- a wrong field, argument or type fails the test;
* records its printed text (``documents``) and the IDs it answered;
* waits before answering a query that contains a key of ``delays`` (an engine
  slow to answer, such as a service that never passes its health check);
* answers from a table keyed by the leaf field (``exitCode``, ``publish``...),
  inventing an ``id`` for every ``id``/``sync`` selection, or fails the
  query the way the engine does (an ``EXEC_ERROR`` with command, exit code,
  stdout and stderr) when a rule says so; ``traceURL`` without an answer
  fails as an engine without Dagger Cloud does.

The internals used: ``Client.from_connection`` with an object that has the
``session.get_schema()`` / ``session.execute(request)`` pair of dagger-io's
connections, and ``Client._ctx`` to point the global ``dag`` at the double.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import dagger
import gql
import graphql
from dagger._exceptions import QueryErrorValue
from dagger.client._core import Context
from gql.transport.exceptions import TransportQueryError

SCHEMA_PATH = Path(__file__).parent / "resources" / "dagger" / "schema-v0.21.8.graphqls"

_NODE_ID = re.compile(r'node\(id: "([^"]+)"\)')

Answer = Any | Callable[[graphql.FieldNode], Any]


@dataclass
class ExecFailure:
    """Make a query whose text contains ``when`` fail like a failed ``withExec``."""

    when: str
    command: list[str]
    exit_code: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class QueryFailure:
    """Make a query whose text contains ``when`` fail with an engine error ``message``."""

    when: str
    message: str


NO_CLOUD_ORGANIZATION = (
    "no cloud organization configured; `dagger login` to configure your Dagger Cloud organization"
)
"""What ``Cloud.traceURL`` answers without Dagger Cloud (Dagger's core/schema/cloud.go)."""


@functools.cache
def load_schema() -> graphql.GraphQLSchema:
    """The Dagger engine's schema, parsed by graphql-core."""
    return graphql.build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))


class _Session:
    def __init__(self, double: DaggerApiDouble) -> None:
        self._double = double

    async def get_schema(self) -> graphql.GraphQLSchema:
        return self._double.schema

    async def execute(self, request: Any) -> Any:
        text = graphql.print_ast(request.document)
        for when, seconds in self._double.delays.items():
            if when in text:
                await anyio.sleep(seconds)  # an engine that takes this long to answer
        return self._double.answer(request.document)


@dataclass
class _Connection:
    session: _Session


@dataclass
class DaggerApiDouble:
    """Stands in for a Dagger engine; see the module docstring."""

    answers: dict[str, Answer] = field(default_factory=dict)
    failures: list[ExecFailure | QueryFailure] = field(default_factory=list)
    delays: dict[str, float] = field(default_factory=dict)
    """Seconds to wait before answering a query whose text contains the key."""
    schema: graphql.GraphQLSchema = field(default_factory=load_schema)
    documents: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    current: str = ""
    """The text of the document being answered (for answers that depend on it)."""
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def client(self) -> dagger.Client:
        """A dagger-io client whose queries come to this double."""
        return dagger.Client.from_connection(_Connection(_Session(self)))  # type: ignore[arg-type,no-any-return]

    @contextmanager
    def as_dag(self) -> Iterator[dagger.Client]:
        """Point the global ``dagger.dag`` (what modules use) at this double."""
        saved = dagger.dag._ctx
        dagger.dag._ctx = Context(_Connection(_Session(self)))  # type: ignore[arg-type]
        try:
            yield dagger.dag
        finally:
            dagger.dag._ctx = saved

    async def register(self, main_object: type) -> None:
        """Send ``main_object``'s module registration (what ``dagger develop`` asks) here.

        The runtime names the main object through ``DAGGER_MAIN_OBJECT`` before
        importing the module; this sets the same on the already built ``Module``.
        """
        module = main_object.__dagger_module__  # type: ignore[attr-defined]
        saved = module._main_name, module._main
        module._main_name = main_object.__name__
        module._main = module.get_object(main_object.__name__)
        try:
            with self.as_dag():
                await module._typedefs()
        finally:
            module._main_name, module._main = saved

    # -- the engine side -------------------------------------------------------

    def answer(self, document: graphql.DocumentNode) -> Any:
        errors = graphql.validate(self.schema, document)
        text = graphql.print_ast(document)
        assert not errors, f"query does not fit the Dagger schema: {errors}\n{text}"
        self.documents.append(text)
        self.current = text
        for failure in self.failures:
            if failure.when in text:
                raise _transport_error(failure)
        operation = document.definitions[0]
        assert isinstance(operation, graphql.OperationDefinitionNode)
        return self._select(operation.selection_set, text)

    def _select(self, selection_set: graphql.SelectionSetNode, text: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for selection in selection_set.selections:
            if isinstance(selection, graphql.InlineFragmentNode):
                result.update(self._select(selection.selection_set, text))
                continue
            assert isinstance(selection, graphql.FieldNode)
            key = selection.alias.value if selection.alias else selection.name.value
            if selection.selection_set is not None:
                result[key] = self._select(selection.selection_set, text)
            else:
                result[key] = self._leaf(selection, text)
        return result

    def _leaf(self, node: graphql.FieldNode, text: str) -> Any:
        name = node.name.value
        if name in ("id", "sync", "start", "stop") and name not in self.answers:
            value = f"id-{next(self._counter)}"
            self.ids[value] = text
            return value
        if name == "traceURL" and name not in self.answers:
            # the engine's answer when the session has no Dagger Cloud organization
            raise _transport_error(QueryFailure("traceURL", NO_CLOUD_ORGANIZATION))
        assert name in self.answers, f"the double has no answer for {name!r}:\n{text}"
        answer = self.answers[name]
        return answer(node) if callable(answer) else answer

    # -- what tests ask --------------------------------------------------------

    def calls(self, field_name: str) -> list[dict[str, Any]]:
        """The arguments of every ``field_name`` call in the recorded documents."""
        found = []
        for text in self.documents:
            for node in _fields(graphql.parse(text)):
                if node.name.value == field_name:
                    found.append(
                        {
                            arg.name.value: graphql.value_from_ast_untyped(arg.value)
                            for arg in node.arguments or ()
                        }
                    )
        return found

    def made_by(self, id_value: str, field_name: str) -> bool:
        """Whether ``id_value`` comes from a query that selects ``field_name``.

        An object loaded by ID (``node(id:)``, as dagger-io does after ``sync``)
        is followed back to the query that made that ID.
        """
        text = self.ids.get(id_value, "")
        if re.search(rf"\b{re.escape(field_name)}\b", text):
            return True
        return any(self.made_by(parent, field_name) for parent in _NODE_ID.findall(text))


def _fields(node: graphql.Node) -> Iterator[graphql.FieldNode]:
    if isinstance(node, graphql.FieldNode):
        yield node
    for key in node.keys:
        value = getattr(node, key, None)
        children = value if isinstance(value, tuple | list) else (value,)
        for child in children:
            if isinstance(child, graphql.Node):
                yield from _fields(child)


def _transport_error(failure: ExecFailure | QueryFailure) -> TransportQueryError:
    if isinstance(failure, QueryFailure):
        return TransportQueryError(failure.message, errors=[{"message": failure.message}])
    message = (
        f"process {failure.command!r} did not complete successfully: exit code: {failure.exit_code}"
    )
    extensions: Mapping[str, Any] = {
        "_type": "EXEC_ERROR",
        "cmd": failure.command,
        "exitCode": failure.exit_code,
        "stdout": failure.stdout,
        "stderr": failure.stderr,
    }
    return TransportQueryError(
        message, errors=[{"message": message, "extensions": dict(extensions)}]
    )


def dagger_error_classes() -> dict[str, type[dagger.DaggerError]]:
    """Every ``DaggerError`` subclass dagger-io defines (its module runtime's included), by name."""
    import dagger.mod._exceptions  # noqa: PLC0415 - registers the module errors

    def walk(cls: type[dagger.DaggerError]) -> set[type[dagger.DaggerError]]:
        found = {cls}
        for sub in cls.__subclasses__():
            found |= walk(sub)
        return found

    return {cls.__name__: cls for cls in walk(dagger.DaggerError)}


def query_error(message: str, extensions: Mapping[str, Any] | None = None) -> dagger.QueryError:
    """A ``QueryError`` as dagger-io makes it from an engine answer (an ``ExecError``
    when ``extensions`` carry ``_type: EXEC_ERROR``)."""
    value = QueryErrorValue(message=message, extensions=dict(extensions or {}))
    return dagger.QueryError([value], gql.GraphQLRequest(graphql.parse("{ version }")))
