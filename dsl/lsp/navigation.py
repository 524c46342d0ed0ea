"""Go to definition and find references: a name inside a definition is looked up among its
bindings (parameters, inputs, members, values); else among the nets and blocks the file
can see, its own and imported ones (the standard library's included)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from dsl.lsp.documents import Document, Documents
from dsl.lsp.outline import PARAM, Binding, Scope, scope_at, scopes, uses
from dsl.lsp.positions import Token, name_range, open_call, token_at, tokens, uri_of
from dsl.lsp.workspace import sources
from dsl.records import record
from dsl.source import source_text
from dsl.syntax.loader import Definition


@record
class Target:
    """What the name under the cursor stands for: a binding of a scope, or a definition."""

    token: Token
    scope: Scope | None = None
    binding: Binding | None = None
    definition: Definition | None = None


def target_at(doc: Document, position: types.Position) -> Target | None:
    analysis = doc.parsed
    token = token_at(doc.text, position)
    if token is None or token.attr or analysis is None or analysis.spec is None:
        return None
    found = scopes(analysis.spec, doc.text)
    scope = scope_at(found, token.line)
    binding = scope.bindings.get(token.name) if scope is not None else None
    if binding is not None and (not token.keyword or binding.range == token.range):
        return Target(token, scope, binding)  # `mid=` names a value only where it is declared
    definition = analysis.names.get(token.name)
    return Target(token, definition=definition) if definition is not None else None


def definition_location(definition: Definition, doc: Document) -> types.Location | None:
    """Where a net or block is defined: its name on its `net`/`block` line."""
    path = definition.unit.path
    node = definition.node
    text: str | None
    if path is None:
        text = doc.text
        uri = doc.uri
    else:
        text = _text_of(path, node.span.file, doc)
        uri = uri_of(path)
    if text is None:
        return None
    line = node.span.line - 1
    where = name_range(text, line, node.name, node.span.col - 1 + len(node.kind))
    return types.Location(uri, where)


def _text_of(path: Path, name: str, doc: Document) -> str | None:
    if doc.path is not None and doc.path.resolve() == path.resolve():
        return doc.text
    text = source_text(name)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
    return text


def definition(doc: Document, position: types.Position) -> list[types.Location]:
    target = target_at(doc, position)
    if target is None:
        return []
    if target.binding is not None:
        return [types.Location(doc.uri, target.binding.range)]
    assert target.definition is not None
    found = definition_location(target.definition, doc)
    return [found] if found is not None else []


def references(
    docs: Documents, doc: Document, position: types.Position, declaration: bool = True
) -> list[types.Location]:
    """Every use of the name under the cursor: a binding's within its definition, a net's
    or block's in every open document and workspace file that sees the same definition."""
    target = target_at(doc, position)
    if target is None:
        return []
    declared: types.Location | None
    if target.binding is not None:
        spots = [
            types.Location(doc.uri, t.range)
            for t in uses(doc.text, target.token.name, target.scope)
        ]
        declared = types.Location(doc.uri, target.binding.range)
        if target.binding.kind == PARAM and target.scope is not None:
            spots += _keyword_uses(docs, doc, target.scope.node.name, target.token.name)
    else:
        assert target.definition is not None
        spots = [
            types.Location(other.uri, t.range)
            for other in sources(docs, doc, target.definition)
            if _sees(other.names, target.definition)
            for t in uses(other.text, target.token.name, None)
        ]
        declared = definition_location(target.definition, doc)
    unique = {(s.uri, s.range.start.line, s.range.start.character): s for s in spots}
    if declared is not None:
        key = (declared.uri, declared.range.start.line, declared.range.start.character)
        unique.pop(key, None)
        if declaration:
            unique = {key: declared, **unique}
    return list(unique.values())


def _keyword_uses(docs: Documents, doc: Document, callee: str, name: str) -> list[types.Location]:
    """A parameter passed by keyword (`DoubleConv(64, mid=32)`) in the open documents and
    workspace files that see its net or block."""
    definition = doc.parsed.names.get(callee) if doc.parsed is not None else None
    if definition is None:
        return []
    found = []
    for other in sources(docs, doc, definition):
        if not _sees(other.names, definition):
            continue
        lines = other.text.splitlines()
        found += [
            types.Location(other.uri, t.range)
            for t in tokens(other.text)
            if t.name == name
            and t.keyword
            and open_call([*lines[: t.line], lines[t.line][: t.start]]) == callee
        ]
    return found


def _sees(names: dict[str, Definition], definition: Definition) -> bool:
    found = names.get(definition.node.name)
    return found is not None and _where(found) == _where(definition)


def _where(definition: Definition) -> tuple[Path | None, int]:
    path = definition.unit.path
    return (path.resolve() if path else None), definition.node.span.line
