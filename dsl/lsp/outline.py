"""What each name of a `.net` document stands for: the definitions (nets, blocks) and, in
each, its parameters, inputs, members (modules, which become attributes and checkpoint
keys) and values. Document symbols, definitions, references and rename read this."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lsprotocol import types

from dsl import ir
from dsl.lsp.positions import Token, name_range, tokens
from dsl.records import field, record

PARAM, INPUT, MEMBER, VALUE = "parameter", "input", "member", "value"
_SYMBOL_KINDS = {
    PARAM: types.SymbolKind.TypeParameter,
    INPUT: types.SymbolKind.Variable,
    MEMBER: types.SymbolKind.Field,
    VALUE: types.SymbolKind.Variable,
}


@record
class Binding:
    """A name bound inside a definition, where it is first written."""

    name: str
    kind: str  # PARAM, INPUT, MEMBER, VALUE
    range: types.Range
    statement: Any  # the IR node that binds it
    module: ir.ExprNode | None = None  # for a member: what it is (`DoubleConv(64)`)


@record
class Scope:
    """One definition: its lines (0-based, end exclusive), its name's range, its bindings."""

    node: ir.Definition
    first: int
    last: int
    name_range: types.Range
    bindings: dict[str, Binding] = field(default_factory=dict)

    def contains(self, line: int) -> bool:
        return self.first <= line < self.last


def scopes(spec: ir.SpecFile, text: str) -> list[Scope]:
    """The document's definitions in order, each up to the next one (or the end)."""
    starts = [d.span.line - 1 for d in spec.defs]
    ends = [*starts[1:], len(text.splitlines()) + 1]
    found = []
    for node, first, last in zip(spec.defs, starts, ends):
        keyword_end = node.span.col - 1 + len(node.kind)
        scope = Scope(node, first, last, name_range(text, first, node.name, keyword_end))
        for param in node.params:
            _bind(
                scope,
                param.name,
                PARAM,
                param,
                name_range(text, param.span.line - 1, param.name, param.span.col - 1),
            )
        body = node.body.body if isinstance(node.body, ir.Container) else node.body
        for stmt in statements(body):
            for name, kind, module, line, col in _bound(stmt):
                _bind(scope, name, kind, stmt, name_range(text, line, name, col), module)
        found.append(scope)
    return found


def _bind(
    scope: Scope, name: str, kind: str, stmt: Any, where: types.Range, module: Any = None
) -> None:
    if name not in scope.bindings:
        scope.bindings[name] = Binding(name, kind, where, stmt, module)


def statements(body: list[Any]) -> Iterator[Any]:
    """The statements of a body, those under `if`/`for` and in containers included."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ir.If):
            yield from statements([*stmt.then, *stmt.else_])
        elif isinstance(stmt, ir.For):
            yield from statements(stmt.body)
        elif isinstance(stmt, ir.Forward):
            yield from statements(stmt.forward)
        elif isinstance(stmt, ir.Let | ir.Return) and isinstance(_value(stmt), ir.Container):
            container = _value(stmt)
            assert isinstance(container, ir.Container)
            yield from statements(container.body)


def _value(stmt: ir.Let | ir.Return) -> Any:
    return stmt.value if isinstance(stmt, ir.Let) else stmt.return_


def _bound(stmt: Any) -> Iterator[tuple[str, str, Any, int, int]]:
    """(name, kind, module, 0-based line, column to look from) for each name `stmt` binds."""
    line, col = stmt.span.line - 1, stmt.span.col - 1
    if isinstance(stmt, ir.Input):
        yield stmt.input, INPUT, None, line, col
    elif isinstance(stmt, ir.Let | ir.Return) and stmt.define is not None:
        applied = _value(stmt)
        callee = applied.func if isinstance(applied, ir.Call) else None
        if isinstance(callee, ir.Name):
            yield callee.id, MEMBER, stmt.define, callee.span.line - 1, callee.span.col - 1
        if isinstance(stmt, ir.Let):
            yield from ((name, VALUE, None, line, col) for name in stmt.let)
    elif isinstance(stmt, ir.Let):
        module = stmt.value if _is_module(stmt.value) else None
        kind = MEMBER if module is not None else VALUE
        yield from ((name, kind, module, line, col) for name in stmt.let)
    elif isinstance(stmt, ir.ParamDecl | ir.BufferDecl):
        yield stmt.name, MEMBER, None, line, col


def _is_module(value: Any) -> bool:
    """A container, or a call of a capitalised name (`Conv2d(...)`, `DoubleConv(64)`):
    what a `name = ...` line makes a member of."""
    if isinstance(value, ir.Container):
        return True
    if not isinstance(value, ir.Call):
        return False
    name = ir.dotted(value.func)
    return name is not None and name.rpartition(".")[2][:1].isupper()


def scope_at(found: list[Scope], line: int) -> Scope | None:
    return next((s for s in found if s.contains(line)), None)


def uses(text: str, name: str, scope: Scope | None) -> list[Token]:
    """Where `name` is used as a name of the spec (not as `x.name` or `name=` in a call),
    within `scope`'s lines (the whole text without one)."""
    return [
        t
        for t in tokens(text)
        if t.name == name
        and not t.attr
        and not t.keyword
        and (scope is None or scope.contains(t.line))
    ]


def document_symbols(found: list[Scope]) -> list[types.DocumentSymbol]:
    """The outline: nets and blocks, each with its parameters, inputs, members and values."""
    out = []
    for scope in found:
        children = [
            types.DocumentSymbol(
                name=b.name,
                kind=_SYMBOL_KINDS[b.kind],
                range=b.range,
                selection_range=b.range,
                detail=b.kind,
            )
            for b in scope.bindings.values()
        ]
        whole = types.Range(types.Position(scope.first, 0), types.Position(scope.last - 1, 0))
        out.append(
            types.DocumentSymbol(
                name=scope.node.name,
                kind=types.SymbolKind.Class
                if scope.node.kind == "block"
                else types.SymbolKind.Module,
                range=whole,
                selection_range=scope.name_range,
                detail=scope.node.kind,
                children=children,
            )
        )
    return out
