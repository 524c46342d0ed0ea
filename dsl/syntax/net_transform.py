"""Lark's parse of a `.net` text -> IR: a `Transformer` that Lark calls as each rule reduces.

Each method gets the rule's children as Lark's tree builder gives them (anonymous tokens
dropped, an absent `[x]` as None); where its node starts and ends is net_positions.py's.
Errors met while building (a duplicate keyword, nesting too deep) wait until the text has
parsed: a syntax error anywhere takes precedence, else the first of them in reading order."""

from __future__ import annotations

from typing import Any, NamedTuple

from lark import Token, Transformer

from dsl import ir
from dsl.errors import DSLSyntaxError
from dsl.source import Span
from dsl.syntax.net_expressions import ExpressionRules, unescape
from dsl.syntax.net_positions import Items, LastToken, PartReader, rule


class _Targets(NamedTuple):
    names: list[str]
    first: Token


class NetTransformer(ExpressionRules, Transformer):
    """Builds IR nodes bottom-up: one method per rule (or alias) of grammar/net.lark; the
    expression rules are `ExpressionRules`'."""

    def __init__(self, tracker: LastToken, read_part: PartReader | None) -> None:
        Transformer.__init__(self)
        ExpressionRules.__init__(self, tracker, read_part)

    # -- top level
    @rule
    def start(self, items: Items) -> ir.SpecFile:
        seen_def = False
        for item in items:
            if isinstance(item, ir.Definition):
                seen_def = True
            elif isinstance(item, ir.Import) and seen_def:
                raise DSLSyntaxError(
                    "imports must come before the first net or block",
                    item.span,
                    hint="move this import to the top of the file",
                )
        return ir.SpecFile(
            imports=[i for i in items if isinstance(i, ir.Import)],
            defs=[d for d in items if isinstance(d, ir.NetDef | ir.BlockDef | ir.FuncDef)],
            span=Span(file=self.file, line=1, col=1),
        )

    @rule
    def import_stmt(self, items: Items) -> ir.Import:
        keyword, source, *names = items
        return ir.Import(
            from_=source,
            import_=[n.value for n in names],
            name_spans=[self._tok(n) for n in names],
            span=self._span(keyword),
        )

    @rule
    def import_source(self, items: Items) -> str:
        (item,) = items
        if isinstance(item, Token):  # a quoted path
            return unescape(item.value[1:-1])
        return item

    @rule
    def dotted_name(self, items: Items) -> str:
        return ".".join(t.value for t in items)

    @rule
    def definition(self, items: Items) -> ir.NetDef | ir.BlockDef:
        kind, name, params, head, body = items
        span = self._span(kind)
        if head is not None:
            container_kind, options = head
            body = ir.Container(kind=container_kind, options=options, body=body, span=span)
        if kind == "net":
            return ir.NetDef(net=name.value, params=params or [], body=body, doc=None, span=span)
        return ir.BlockDef(block=name.value, params=params or [], body=body, doc=None, span=span)

    @rule
    def derived_definition(self, items: Items) -> ir.NetDef | ir.BlockDef:
        kind, name, params, base, *rest = items
        body = rest[0] if rest else []
        fields = dict(params=params or [], base=base, body=body, doc=None, span=self._span(kind))
        if kind == "net":
            return ir.NetDef(net=name.value, **fields)
        return ir.BlockDef(block=name.value, **fields)

    @rule
    def funcdef(self, items: Items) -> ir.FuncDef:
        keyword, name, *params, body = items
        params = [p for p in params if p is not None]
        check_unique([(p.name, p.span) for p in params], "parameter")
        return ir.FuncDef(
            def_=name.value, params=params, body=body, doc=None, span=self._span(keyword)
        )

    @rule
    def def_kind(self, items: Items) -> Token:
        return items[0]

    @rule
    def def_params(self, items: Items) -> list[ir.DefParam]:
        params = [p for p in items if p is not None]
        check_unique([(p.name, p.span) for p in params], "parameter")
        return params

    @rule
    def def_param(self, items: Items) -> ir.DefParam:
        name, default = items
        return ir.DefParam(name=name.value, default=default, span=self._span(name))

    @rule
    def container_head(self, items: Items) -> tuple[str, dict]:
        kind, options = items
        return kind.value, options or {}

    @rule
    def container(self, items: Items) -> Token:
        return items[0]

    @rule
    def suite(self, items: Items) -> Items:
        stmts: Items = []
        for item in items:
            if isinstance(item, list):  # `input x1, x2` declares two inputs
                stmts.extend(item)
            elif item is not None:
                stmts.append(item)
        return stmts

    # -- statements
    @rule
    def input_stmt(self, items: Items) -> list[ir.Input]:
        return items

    @rule
    def input_decl(self, items: Items) -> ir.Input:
        name, dtype, dims = items
        return ir.Input(
            input=name.value,
            shape=dims,
            dtype=dtype.value if dtype is not None else None,
            span=self._span(name),
        )

    @rule
    def dims(self, items: Items) -> Items:
        return [d for d in items if d is not None]

    @rule
    def let_stmt(self, items: Items) -> ir.Let:
        targets, value, define = items
        span = self._span(targets.first)
        return ir.Let(let=targets.names, value=value, define=define, op=None, span=span)

    @rule
    def targets(self, items: Items) -> _Targets:
        return _Targets([self._target(t) for t in items], items[0])

    def _target(self, token: Token) -> str:
        """A name, or a member name torch allows written as a string (`"block1-0"`)."""
        if token.type != "STRING":
            return self._name(token)
        return unescape(self._name(token)[1:-1])

    @rule
    def aug_stmt(self, items: Items) -> ir.Let:
        name, op, value = items
        target = self._name(name)
        return ir.Let(
            let=[target], value=value, define=None, op=op.value[:-1], span=self._span(name)
        )

    @rule
    def layer_stmt(self, items: Items) -> ir.Layer:
        return ir.Layer(layer=items[0], span=self._span(items[0]))

    @rule
    def return_stmt(self, items: Items) -> ir.Return:
        keyword, value, define = items
        return ir.Return(return_=value, define=define, span=self._span(keyword))

    @rule
    def pass_stmt(self, items: Items) -> None:
        return None

    @rule
    def tensor_decl(self, items: Items) -> ir.ParamDecl | ir.BufferDecl:
        kind, name, dtype, dims, init, *options = items
        span = self._span(kind)
        check_unique([(k, span) for k, _ in options], "option")
        fields = dict(
            shape=dims,
            dtype=dtype.value if dtype is not None else None,
            init=init,
            options=dict(options),
            span=span,
        )
        if kind == "param":
            return ir.ParamDecl(param=name.value, **fields)
        return ir.BufferDecl(buffer=name.value, **fields)

    @rule
    def decl_kind(self, items: Items) -> Token:
        return items[0]

    @rule
    def decl_option(self, items: Items) -> tuple[str, Any]:
        return items[0].value, items[1]

    def _container(self, kind: Token, options: dict | None, body: Items, span: Span) -> Any:
        return ir.Container(kind=kind.value, options=options or {}, body=body, span=span)

    @rule
    def container_let(self, items: Items) -> ir.Let:
        targets, kind, options, body = items
        span = self._span(targets.first)
        value = self._container(kind, options, body, span)
        return ir.Let(let=targets.names, value=value, define=None, op=None, span=span)

    @rule
    def container_apply(self, items: Items) -> ir.Let:
        targets, value, kind, options, body = items
        span = self._span(targets.first)
        define = self._container(kind, options, body, span)
        return ir.Let(let=targets.names, value=value, define=define, op=None, span=span)

    @rule
    def container_return(self, items: Items) -> ir.Return:
        keyword, value, kind, options, body = items
        span = self._span(keyword)
        return ir.Return(
            return_=value, define=self._container(kind, options, body, span), span=span
        )

    @rule
    def container_anon(self, items: Items) -> ir.Layer:
        kind, options, body = items
        span = self._span(kind)
        return ir.Layer(layer=self._container(kind, options, body, span), span=span)

    @rule
    def call_parens(self, items: Items) -> dict:
        (arguments,) = items
        args, kwargs, _, spread = arguments if arguments is not None else ([], {}, {}, [])
        if args or spread:
            raise DSLSyntaxError(
                "container options are keywords",
                (args or spread)[0].span,
                hint='write e.g. ModuleList(run="parallel", merge="cat")',
            )
        return kwargs

    @rule
    def if_stmt(self, items: Items) -> ir.If:
        keyword, cond, then, *rest = items
        else_clause = rest.pop() if rest else None
        orelse = else_clause or []
        for elif_cond, elif_body, elif_span in reversed(rest):
            orelse = [ir.If(if_=elif_cond, then=elif_body, else_=orelse, span=elif_span)]
        return ir.If(if_=cond, then=then, else_=orelse, span=self._span(keyword))

    @rule
    def elif_clause(self, items: Items) -> tuple:
        keyword, cond, body = items
        return cond, body, self._span(keyword)

    @rule
    def else_clause(self, items: Items) -> Items:
        return items[0]

    @rule
    def for_stmt(self, items: Items) -> ir.For:
        keyword, target, iterable, body = items
        return ir.For(for_=target, in_=iterable, body=body, span=self._span(keyword))

    @rule
    def init_block(self, items: Items) -> ir.InitBlock:
        keyword, *rules = items
        return ir.InitBlock(init=rules, span=self._span(keyword))

    @rule
    def forward_block(self, items: Items) -> ir.Forward:
        keyword, body = items
        return ir.Forward(forward=body, span=self._span(keyword))

    @rule
    def init_rule(self, items: Items) -> ir.InitRule:
        target, init = items
        if init is None:
            return ir.InitRule(match=None, init=target, span=self._span(target))
        return ir.InitRule(match=pattern_text(target), init=init, span=self._span(target))


def pattern_text(node: Any) -> str:
    """An init rule's target: `Conv2d.weight` written bare, or any pattern as a string."""
    if isinstance(node, ir.Const) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ir.Name):
        return node.id
    if isinstance(node, ir.Attr):
        return f"{pattern_text(node.value)}.{node.attr}"
    raise DSLSyntaxError(
        "an init rule starts with what it matches: a layer type and tensor, or a quoted pattern",
        node.span,
        hint='write e.g. Conv2d.weight: kaiming_normal(mode="fan_out") or "layer*.bn2.weight": zeros()',
    )


def check_unique(items: list[tuple[str, Span]], what: str) -> None:
    seen: set[str] = set()
    for name, span in items:
        if name in seen:
            raise DSLSyntaxError(f"{what} '{name}' is given twice", span)
        seen.add(name)
