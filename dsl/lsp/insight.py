"""Hover and inlay hints: each member's output shape and parameter count (what `dsl summary`
measures), a layer's constructor arguments and where each came from (what `dsl resolve`
shows), a net's or block's signature, a layer's from the registry."""

from __future__ import annotations

from lsprotocol import types

from dsl import ir
from dsl.lsp.documents import Document, Insight
from dsl.lsp.navigation import Target, target_at
from dsl.lsp.outline import INPUT, MEMBER, PARAM, Binding, Scope, scopes, statements
from dsl.lsp.positions import token_at
from dsl.syntax.printer import print_expr
from dsl.tools.measure import shape_text
from dsl.tools.provenance import DEFAULT
from dsl.tools.summary import Row
from dsl.torchlib.registry import REGISTRY

MAX_PLACES = 6  # a block's member: the places it is built at, shown in a hover


def hover(doc: Document, insight: Insight | None, position: types.Position) -> types.Hover | None:
    target = target_at(doc, position)
    if target is None:
        token = token_at(doc.text, position)
        text = _registry_text(token.name) if token is not None and not token.attr else None
        return _markdown(text, token.range) if text and token else None
    if target.definition is not None:
        return _markdown(_definition_text(target.definition.node), target.token.range)
    assert target.binding is not None and target.scope is not None
    text = _binding_text(target, insight, doc)
    return _markdown(text, target.token.range)


def _markdown(text: str, where: types.Range) -> types.Hover:
    content = types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
    return types.Hover(contents=content, range=where)


def _registry_text(name: str) -> str | None:
    layer = REGISTRY.layers.get(name)
    if layer is not None:
        signature = str(layer.signature) if layer.signature is not None else "(...)"
        doc = (getattr(layer.factory, "__doc__", None) or "").strip().splitlines()
        first = f"\n\n{doc[0]}" if doc else ""
        return f"```python\n{name}{signature}\n```\nlayer ({layer.source}){first}"
    if REGISTRY.function(name) is not None:
        return f"`{name}`: a tensor function usable in forward (`dsl ops` lists them)"
    return None


def _definition_text(node: ir.Definition) -> str:
    params = ", ".join(
        p.name + (f"={print_expr(p.default)}" if p.default is not None else "") for p in node.params
    )
    where = f"\n\n{node.span.file}:{node.span.line}" if node.span else ""
    doc = f"\n\n{node.doc}" if node.doc else ""
    return f"```\n{node.kind} {node.name}({params})\n```{doc}{where}"


def _binding_text(target: Target, insight: Insight | None, doc: Document) -> str:
    binding, scope = target.binding, target.scope
    assert binding is not None and scope is not None
    head = f"**{binding.name}**: {binding.kind} of {scope.node.kind} {scope.node.name}"
    if binding.kind == PARAM:
        default = binding.statement.default
        return head + (f", default `{print_expr(default)}`" if default is not None else "")
    if binding.kind == INPUT and (shape := _input_shape(binding, scope, doc)):
        return head + f"\n\nshape `{shape}`"
    if insight is None:
        return head
    if binding.kind == INPUT:  # a block's: as each instance was given it
        return head + _value_text(insight, binding, scope, target.token.line)
    member = _member_of(binding, scope, target.token.line)
    if member is None:
        return head + _value_text(insight, binding, scope, target.token.line)
    places = _places(insight, scope, member)
    lines = [_place_text(insight, path, row) for path, row in places[:MAX_PLACES]]
    more = len(places) - MAX_PLACES
    if more > 0:
        lines.append(f"... and {more} more places")
    return "\n\n".join([head, *lines])


def _input_shape(binding: Binding, scope: Scope, doc: Document) -> str | None:
    """The net's input as checked (`[B, 3, H, W]`), else as declared (a block's input has
    one shape per place the block is built)."""
    resolved = doc.parsed.resolved if doc.parsed is not None else None
    if resolved is not None and resolved.name == scope.node.name:
        meta = dict(resolved.inputs).get(binding.name)
        if meta is not None:
            return shape_text(meta, resolved.symbols)
    shape = binding.statement.shape
    return f"[{', '.join(print_expr(d) for d in shape)}]" if shape else None


def _member_of(binding: Binding, scope: Scope, line: int) -> str | None:
    """The member whose output a name holds: the member itself, or the one applied on the
    line that binds the value (`x1 = inc(x): ...`, `y = conv(x)`)."""
    if binding.kind == MEMBER:
        return binding.name
    for stmt in _lets_on_line(scope, line, binding.name) or [binding.statement]:
        applied = stmt.value if isinstance(stmt, ir.Let) else None
        callee = applied.func if isinstance(applied, ir.Call) else None
        if isinstance(callee, ir.Name):
            found = scope.bindings.get(callee.id)
            if found is not None and found.kind == MEMBER:
                return callee.id
    return None


def _value_text(insight: Insight, binding: Binding, scope: Scope, line: int) -> str:
    """A value a function or an op made: its shape where the statement on `line` binds it
    (else where it is first bound), one per place the statement ran."""
    if not _lets_on_line(scope, line, binding.name):
        line = binding.statement.span.line - 1
    shapes = insight.values.get((line, binding.name), [])
    if len(shapes) > MAX_PLACES:
        shapes = [*shapes[:MAX_PLACES], "..."]
    return f"\n\nshape {', '.join(f'`{s}`' for s in shapes)}" if shapes else ""


def _lets_on_line(scope: Scope, line: int, name: str) -> list[ir.Let]:
    body = scope.node.body.body if isinstance(scope.node.body, ir.Container) else scope.node.body
    return [
        s
        for s in statements(body)
        if isinstance(s, ir.Let) and s.span.line - 1 == line and name in s.let
    ]


def _places(insight: Insight, scope: Scope, member: str) -> list[tuple[str, Row]]:
    """The member as built: once in the net, once per instance of a block."""
    by_name = {("" if row.depth == 0 else row.name): row for row in insight.rows}
    if not insight.rows:
        return []
    root = insight.rows[0]
    if scope.node.kind == "net" and scope.node.name == root.name:
        prefixes = [""]
    else:
        prefixes = [row.name for row in insight.rows if row.type == scope.node.name and row.depth]
    paths = [f"{p}.{member}" if p else member for p in prefixes]
    return [(path, by_name[path]) for path in paths if path in by_name]


def _place_text(insight: Insight, path: str, row: Row) -> str:
    text = f"`{path}`: {row.type} → `{row.output}` · {row.params:,} parameters"
    entry = insight.entries.get(path)
    if entry is None or not entry.args:
        return text
    args = ", ".join(
        f"{a.name}={a.value}" + ("" if a.origin == "spec" else f" *({a.origin})*")
        for a in entry.args
        if a.origin != DEFAULT
    )
    defaults = ", ".join(f"{a.name}={a.value}" for a in entry.args if a.origin == DEFAULT)
    return text + f"\n\n&nbsp;&nbsp;{args}" + (f"; defaults: {defaults}" if defaults else "")


def inlay_hints(doc: Document, insight: Insight | None, lines: range) -> list[types.InlayHint]:
    """After each line that binds a member: its output shape where every place it is
    built agrees on one."""
    analysis = doc.parsed
    if insight is None or analysis is None or analysis.spec is None:
        return []
    text_lines = doc.text.splitlines()
    hints = []
    for scope in scopes(analysis.spec, doc.text):
        for binding in scope.bindings.values():
            line = binding.range.start.line
            if binding.kind != MEMBER or line not in lines or line >= len(text_lines):
                continue
            shapes = {row.output for _, row in _places(insight, scope, binding.name)}
            if len(shapes) == 1:
                end = types.Position(line, len(text_lines[line].rstrip()))
                hints.append(
                    types.InlayHint(
                        end, f"→ {shapes.pop()}", kind=types.InlayHintKind.Type, padding_left=True
                    )
                )
    return hints
