"""Lark's parse of a `.net` text -> IR: a `Transformer` that Lark calls as each rule reduces.

Each method gets the rule's children as Lark's tree builder gives them (anonymous tokens
dropped, an absent `[x]` as None). A rule's span runs from its first token to the last token
the parser has shifted (`_Tracker.previous`); rules that start with a keyword or a bracket
keep that token (the grammar names it) so the span can start there.

Errors met while building (a duplicate keyword, nesting too deep) wait until the text has
parsed: a syntax error anywhere takes precedence, else the first of them in reading order."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from lark import Token, Transformer

from dsl import ir
from dsl.errors import DSLSyntaxError, Note
from dsl.source import Span
from dsl.syntax.pydantic_private import constructor

MAX_DEPTH = 500  # rules inside rules; later passes walk the IR recursively

PartReader = Callable[[str, Span], Any]
Items = list[Any]


class TooDeep(Exception):
    """The text nests deeper than MAX_DEPTH."""


class LastToken(Protocol):
    previous: Token | None


class _Targets(NamedTuple):
    names: list[str]
    first: Token


def _rule(method: Callable[[Any, Items], Any]) -> Callable[[Any, Items], Any]:
    """A rule's builder: an error it raises waits (its value is None), and the depth of
    the value (1 + its deepest child's) is checked against MAX_DEPTH."""

    @functools.wraps(method)
    def build(self: NetTransformer, items: Items) -> Any:
        depths = self.depths
        depth = 0
        for item in items:
            known = depths.get(id(item))
            if known is not None and known[0] is item and known[1] > depth:
                depth = known[1]
        try:
            value = method(self, items)
        except Exception as exc:
            self.failure = self.failure or exc
            return None
        if depth >= MAX_DEPTH and self.failure is None:
            self.failure = TooDeep()
        if value is not None:
            depths[id(value)] = (value, depth + 1)
        return value

    return build


_NAME_TEMPLATE_PART = re.compile(r"\{([^{}\n]*)\}")

_Const = constructor(ir.Const)
_Name = constructor(ir.Name)
_Attr = constructor(ir.Attr)
_Index = constructor(ir.Index)
_Slice = constructor(ir.Slice)
_Call = constructor(ir.Call)
_BinOp = constructor(ir.BinOp)
_UnaryOp = constructor(ir.UnaryOp)
_IfExp = constructor(ir.IfExp)
_ListExpr = constructor(ir.ListExpr)
_TupleExpr = constructor(ir.TupleExpr)
_DictExpr = constructor(ir.DictExpr)
_Container = constructor(ir.Container)
_Input = constructor(ir.Input)
_Let = constructor(ir.Let)
_Layer = constructor(ir.Layer)
_Return = constructor(ir.Return)
_ParamDecl = constructor(ir.ParamDecl)
_BufferDecl = constructor(ir.BufferDecl)
_If = constructor(ir.If)
_For = constructor(ir.For)
_InitRule = constructor(ir.InitRule)
_InitBlock = constructor(ir.InitBlock)
_DefParam = constructor(ir.DefParam)
_NetDef = constructor(ir.NetDef)
_BlockDef = constructor(ir.BlockDef)
_Import = constructor(ir.Import)
_SpecFile = constructor(ir.SpecFile)


class _Positions:
    """Spans in the file: a text parsed on its own (`parse_expression`) may sit at `origin`."""

    def __init__(self, tracker: LastToken) -> None:
        self.tracker = tracker
        self.begin("<string>", None)

    def begin(self, file: str, origin: Span | None) -> None:
        self.file = file
        self.line_offset = origin.line - 1 if origin else 0
        self.col_offset = origin.col - 1 if origin else 0
        self.shifted = bool(self.line_offset or self.col_offset)
        self.failure: Exception | None = None
        self.depths: dict[int, tuple[Any, int]] = {}
        # values written in parentheses: a rule that starts with one starts at its '('
        self.parenthesized: dict[int, tuple[Any, Token]] = {}

    def _span(self, first: Any) -> Span:
        """From `first` (a token or a node) to the last token shifted."""
        last = self.tracker.previous
        assert last is not None
        if not isinstance(first, Token):
            opened = self.parenthesized.get(id(first))
            if opened is not None and opened[0] is first:
                first = opened[1]
        if isinstance(first, Token):
            line, col = first.line, first.column
        else:
            line, col = first.span.line, first.span.col
            if self.shifted:  # back to the text's own position
                line -= self.line_offset
                col -= self.col_offset if line == 1 else 0
        return self._at(line, col, last.end_line, last.end_column)

    def _tok(self, token: Token) -> Span:
        return self._at(token.line, token.column, token.end_line, token.end_column)

    def _last(self) -> Span:
        assert self.tracker.previous is not None
        return self._tok(self.tracker.previous)

    def _at(self, line: Any, col: Any, end_line: Any, end_col: Any) -> Span:
        if self.shifted:
            col_shift = self.col_offset if line == 1 else 0
            end_shift = self.col_offset if end_line == 1 else 0
            end_line, end_col = (end_line or line) + self.line_offset, (end_col or col) + end_shift
            line, col = line + self.line_offset, col + col_shift
        return Span(self.file, line, col, end_line or line, end_col or col)


class NetTransformer(_Positions, Transformer):
    """Builds IR nodes bottom-up: one method per rule (or alias)."""

    def __init__(self, tracker: LastToken, read_part: PartReader | None) -> None:
        Transformer.__init__(self)
        _Positions.__init__(self, tracker)
        self.read_part = read_part

    def finish(self, value: Any) -> Any:
        failure, self.failure, self.depths, self.parenthesized = self.failure, None, {}, {}
        if failure is not None:
            raise failure
        return value

    def _name(self, token: Token) -> str:
        """Validate the `{expr}` parts of a templated name where it is written."""
        text = token.value
        if "{" in text and self.read_part is not None:
            span = self._tok(token)
            for match in _NAME_TEMPLATE_PART.finditer(text):
                part_span = Span(
                    file=span.file,
                    line=span.line,
                    col=span.col + match.start(1),
                    end_line=span.line,
                    end_col=span.col + match.end(1),
                )
                self.read_part(match.group(1), part_span)
        return text

    # -- top level
    @_rule
    def start(self, items: Items) -> ir.SpecFile:
        seen_def = False
        for item in items:
            if isinstance(item, ir.NetDef | ir.BlockDef):
                seen_def = True
            elif isinstance(item, ir.Import) and seen_def:
                raise DSLSyntaxError(
                    "imports must come before the first net or block",
                    item.span,
                    hint="move this import to the top of the file",
                )
        return _SpecFile(
            imports=[i for i in items if isinstance(i, ir.Import)],
            defs=[d for d in items if isinstance(d, ir.NetDef | ir.BlockDef)],
            span=Span(file=self.file, line=1, col=1),
        )

    @_rule
    def import_stmt(self, items: Items) -> ir.Import:
        keyword, source, *names = items
        return _Import(
            from_=source,
            import_=[n.value for n in names],
            name_spans=[self._tok(n) for n in names],
            span=self._span(keyword),
        )

    @_rule
    def import_source(self, items: Items) -> str:
        (item,) = items
        if isinstance(item, Token):  # a quoted path
            return unescape(item.value[1:-1])
        return item

    @_rule
    def dotted_name(self, items: Items) -> str:
        return ".".join(t.value for t in items)

    @_rule
    def definition(self, items: Items) -> ir.NetDef | ir.BlockDef:
        kind, name, params, head, body = items
        span = self._span(kind)
        if head is not None:
            container_kind, options = head
            body = _Container(kind=container_kind, options=options, body=body, span=span)
        if kind == "net":
            return _NetDef(net=name.value, params=params or [], body=body, doc=None, span=span)
        return _BlockDef(block=name.value, params=params or [], body=body, doc=None, span=span)

    @_rule
    def derived_definition(self, items: Items) -> ir.NetDef | ir.BlockDef:
        kind, name, params, base, *rest = items
        body = rest[0] if rest else []
        fields = dict(params=params or [], base=base, body=body, doc=None, span=self._span(kind))
        if kind == "net":
            return _NetDef(net=name.value, **fields)
        return _BlockDef(block=name.value, **fields)

    @_rule
    def def_kind(self, items: Items) -> Token:
        return items[0]

    @_rule
    def def_params(self, items: Items) -> list[ir.DefParam]:
        params = [p for p in items if p is not None]
        check_unique([(p.name, p.span) for p in params], "parameter")
        return params

    @_rule
    def def_param(self, items: Items) -> ir.DefParam:
        name, default = items
        return _DefParam(name=name.value, default=default, span=self._span(name))

    @_rule
    def container_head(self, items: Items) -> tuple[str, dict]:
        kind, options = items
        return kind.value, options or {}

    @_rule
    def container(self, items: Items) -> Token:
        return items[0]

    @_rule
    def suite(self, items: Items) -> Items:
        stmts: Items = []
        for item in items:
            if isinstance(item, list):  # `input x1, x2` declares two inputs
                stmts.extend(item)
            elif item is not None:
                stmts.append(item)
        return stmts

    # -- statements
    @_rule
    def input_stmt(self, items: Items) -> list[ir.Input]:
        return items

    @_rule
    def input_decl(self, items: Items) -> ir.Input:
        name, dtype, dims = items
        return _Input(
            input=name.value,
            shape=dims,
            dtype=dtype.value if dtype is not None else None,
            span=self._span(name),
        )

    @_rule
    def dims(self, items: Items) -> Items:
        return [d for d in items if d is not None]

    @_rule
    def let_stmt(self, items: Items) -> ir.Let:
        targets, value, define = items
        return _Let(let=targets.names, value=value, define=define, span=self._span(targets.first))

    @_rule
    def targets(self, items: Items) -> _Targets:
        return _Targets([self._name(t) for t in items], items[0])

    @_rule
    def layer_stmt(self, items: Items) -> ir.Layer:
        return _Layer(layer=items[0], span=self._span(items[0]))

    @_rule
    def return_stmt(self, items: Items) -> ir.Return:
        keyword, value, define = items
        return _Return(return_=value, define=define, span=self._span(keyword))

    @_rule
    def pass_stmt(self, items: Items) -> None:
        return None

    @_rule
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
            return _ParamDecl(param=name.value, **fields)
        return _BufferDecl(buffer=name.value, **fields)

    @_rule
    def decl_kind(self, items: Items) -> Token:
        return items[0]

    @_rule
    def decl_option(self, items: Items) -> tuple[str, Any]:
        return items[0].value, items[1]

    def _container(self, kind: Token, options: dict | None, body: Items, span: Span) -> Any:
        return _Container(kind=kind.value, options=options or {}, body=body, span=span)

    @_rule
    def container_let(self, items: Items) -> ir.Let:
        targets, kind, options, body = items
        span = self._span(targets.first)
        value = self._container(kind, options, body, span)
        return _Let(let=targets.names, value=value, define=None, span=span)

    @_rule
    def container_apply(self, items: Items) -> ir.Let:
        targets, value, kind, options, body = items
        span = self._span(targets.first)
        define = self._container(kind, options, body, span)
        return _Let(let=targets.names, value=value, define=define, span=span)

    @_rule
    def container_return(self, items: Items) -> ir.Return:
        keyword, value, kind, options, body = items
        span = self._span(keyword)
        return _Return(return_=value, define=self._container(kind, options, body, span), span=span)

    @_rule
    def container_anon(self, items: Items) -> ir.Layer:
        kind, options, body = items
        span = self._span(kind)
        return _Layer(layer=self._container(kind, options, body, span), span=span)

    @_rule
    def call_parens(self, items: Items) -> dict:
        (arguments,) = items
        args, kwargs, _ = arguments if arguments is not None else ([], {}, {})
        if args:
            raise DSLSyntaxError(
                "container options are keywords",
                args[0].span,
                hint='write e.g. ModuleList(run="parallel", merge="cat")',
            )
        return kwargs

    @_rule
    def if_stmt(self, items: Items) -> ir.If:
        keyword, cond, then, *rest = items
        else_clause = rest.pop() if rest else None
        orelse = else_clause or []
        for elif_cond, elif_body, elif_span in reversed(rest):
            orelse = [_If(if_=elif_cond, then=elif_body, else_=orelse, span=elif_span)]
        return _If(if_=cond, then=then, else_=orelse, span=self._span(keyword))

    @_rule
    def elif_clause(self, items: Items) -> tuple:
        keyword, cond, body = items
        return cond, body, self._span(keyword)

    @_rule
    def else_clause(self, items: Items) -> Items:
        return items[0]

    @_rule
    def for_stmt(self, items: Items) -> ir.For:
        keyword, var, iterable, body = items
        return _For(for_=var.value, in_=iterable, body=body, span=self._span(keyword))

    @_rule
    def init_block(self, items: Items) -> ir.InitBlock:
        keyword, *rules = items
        return _InitBlock(init=rules, span=self._span(keyword))

    @_rule
    def init_rule(self, items: Items) -> ir.InitRule:
        target, init = items
        if init is None:
            return _InitRule(match=None, init=target, span=self._span(target))
        return _InitRule(match=pattern_text(target), init=init, span=self._span(target))

    # -- expressions
    @_rule
    def tuple_bare(self, items: Items) -> ir.TupleExpr:
        return _TupleExpr(items=[i for i in items if i is not None], span=self._span(items[0]))

    @_rule
    def ifexp(self, items: Items) -> ir.IfExp:
        then, cond, orelse = items
        return _IfExp(cond=cond, then=then, orelse=orelse, span=self._span(then))

    @_rule
    def or_op(self, items: Items) -> ir.BinOp:
        return _BinOp(op="or", left=items[0], right=items[1], span=self._span(items[0]))

    @_rule
    def and_op(self, items: Items) -> ir.BinOp:
        return _BinOp(op="and", left=items[0], right=items[1], span=self._span(items[0]))

    @_rule
    def not_op(self, items: Items) -> ir.UnaryOp:
        keyword, operand = items
        return _UnaryOp(op="not", operand=operand, span=self._span(keyword))

    @_rule
    def binop(self, items: Items) -> ir.BinOp:
        left, op, right = items
        return _BinOp(op=op.value, left=left, right=right, span=self._span(left))

    @_rule
    def unary(self, items: Items) -> Any:
        op, operand = items
        span = self._span(op)
        if (
            op.value == "-"
            and is_number(operand)
            and (operand.span.line, operand.span.col) == (span.line, span.col + 1)
        ):
            # `-1` is a number, as Python users read it; `-(1)` and `- 1` stay operations.
            return _Const(value=-operand.value, span=span)
        return _UnaryOp(op=op.value, operand=operand, span=span)

    @_rule
    def call(self, items: Items) -> ir.Call:
        func, arguments = items
        args, kwargs, spans = arguments if arguments is not None else ([], {}, {})
        return _Call(func=func, args=args, kwargs=kwargs, kwarg_spans=spans, span=self._span(func))

    @_rule
    def arguments(self, items: Items) -> tuple[Items, dict, dict[str, Span]]:
        args: Items = []
        kwargs: dict = {}
        key_spans: dict[str, Span] = {}
        for item in items:
            if isinstance(item, tuple):
                key, value, span = item
                if key in kwargs:
                    raise DSLSyntaxError(
                        f"keyword argument '{key}' is given twice",
                        span,
                        notes=[Note("first given here", key_spans[key])],
                    )
                kwargs[key] = value
                key_spans[key] = span
            elif kwargs:
                raise DSLSyntaxError(
                    "a positional argument follows a keyword argument",
                    item.span,
                    hint="put positional arguments first",
                )
            else:
                args.append(item)
        return args, kwargs, key_spans

    @_rule
    def kwarg(self, items: Items) -> tuple:
        return items[0].value, items[1], self._tok(items[0])

    @_rule
    def index(self, items: Items) -> ir.Index:
        value, index = items
        return _Index(value=value, index=index, span=self._span(value))

    @_rule
    def subscript_tuple(self, items: Items) -> ir.TupleExpr:
        return _TupleExpr(items=items, span=self._span(items[0]))

    @_rule
    def slice(self, items: Items) -> ir.Slice:
        start, colon, stop, step = items
        span = self._span(colon if start is None else start)
        return _Slice(start=start, stop=stop, step=step, span=span)

    @_rule
    def attr(self, items: Items) -> ir.Attr:
        value, name = items
        return _Attr(value=value, attr=name.value, span=self._span(value))

    @_rule
    def number(self, items: Items) -> ir.Const:
        return _Const(value=number(items[0].value), span=self._tok(items[0]))

    @_rule
    def string(self, items: Items) -> ir.Const:
        return _Const(value=unescape(items[0].value[1:-1]), span=self._tok(items[0]))

    @_rule
    def name(self, items: Items) -> ir.Name:
        return _Name(id=self._name(items[0]), span=self._tok(items[0]))

    @_rule
    def true(self, items: Items) -> ir.Const:
        return _Const(value=True, span=self._last())

    @_rule
    def false(self, items: Items) -> ir.Const:
        return _Const(value=False, span=self._last())

    @_rule
    def none(self, items: Items) -> ir.Const:
        return _Const(value=None, span=self._last())

    @_rule
    def list(self, items: Items) -> ir.ListExpr:
        bracket, *values = items
        return _ListExpr(items=[i for i in values if i is not None], span=self._span(bracket))

    @_rule
    def empty_tuple(self, items: Items) -> ir.TupleExpr:
        return _TupleExpr(items=[], span=self._span(items[0]))

    @_rule
    def paren(self, items: Items) -> Any:
        paren, value = items
        self.parenthesized[id(value)] = (value, paren)
        return value

    @_rule
    def tuple_one(self, items: Items) -> ir.TupleExpr:
        paren, value = items
        return _TupleExpr(items=[value], span=self._span(paren))

    @_rule
    def tuple_many(self, items: Items) -> ir.TupleExpr:
        paren, *values = items
        return _TupleExpr(items=[i for i in values if i is not None], span=self._span(paren))

    @_rule
    def dict(self, items: Items) -> ir.DictExpr:
        brace, *pairs = items
        pairs = [i for i in pairs if i is not None]
        return _DictExpr(
            keys=[k for k, _ in pairs], values=[v for _, v in pairs], span=self._span(brace)
        )

    @_rule
    def dict_item(self, items: Items) -> tuple:
        return items[0], items[1]


def unescape(body: str) -> str:
    out = []
    chars = iter(body)
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(escapes.get(nxt, "\\" + nxt))
        else:
            out.append(char)
    return "".join(out)


def number(text: str) -> int | float:
    clean = text.replace("_", "")
    return int(clean) if clean.isdecimal() else float(clean)  # isdecimal: what `\d` matches


def is_number(node: Any) -> bool:
    return (
        isinstance(node, ir.Const)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    )


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
