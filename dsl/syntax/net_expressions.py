"""The expression rules of `NetTransformer`: `a + b`, calls, subscripts, literals."""

from __future__ import annotations

from typing import Any, NamedTuple

from dsl import ir
from dsl.errors import DSLSyntaxError, Note
from dsl.source import Span
from dsl.syntax.net_positions import Items, Positions, rule


class _Spread(NamedTuple):
    """`**mapping` among a call's arguments, until the call takes it."""

    value: Any
    span: Span


class ExpressionRules(Positions):
    """One method per expression rule (or alias) of grammar/net.lark."""

    @rule
    def tuple_bare(self, items: Items) -> ir.TupleExpr:
        return ir.TupleExpr(items=[i for i in items if i is not None], span=self._span(items[0]))

    @rule
    def ifexp(self, items: Items) -> ir.IfExp:
        then, cond, orelse = items
        return ir.IfExp(cond=cond, then=then, orelse=orelse, span=self._span(then))

    @rule
    def or_op(self, items: Items) -> ir.BinOp:
        return ir.BinOp(op="or", left=items[0], right=items[1], span=self._span(items[0]))

    @rule
    def and_op(self, items: Items) -> ir.BinOp:
        return ir.BinOp(op="and", left=items[0], right=items[1], span=self._span(items[0]))

    @rule
    def not_op(self, items: Items) -> ir.UnaryOp:
        keyword, operand = items
        return ir.UnaryOp(op="not", operand=operand, span=self._span(keyword))

    @rule
    def in_op(self, items: Items) -> ir.BinOp:
        return ir.BinOp(op="in", left=items[0], right=items[1], span=self._span(items[0]))

    @rule
    def not_in_op(self, items: Items) -> ir.BinOp:
        return ir.BinOp(op="not in", left=items[0], right=items[1], span=self._span(items[0]))

    @rule
    def is_op(self, items: Items) -> ir.BinOp:
        return ir.BinOp(op="is", left=items[0], right=items[1], span=self._span(items[0]))

    @rule
    def is_not_op(self, items: Items) -> ir.BinOp:
        return ir.BinOp(op="is not", left=items[0], right=items[1], span=self._span(items[0]))

    @rule
    def binop(self, items: Items) -> ir.BinOp:
        left, op, right = items
        return ir.BinOp(op=op.value, left=left, right=right, span=self._span(left))

    @rule
    def unary(self, items: Items) -> Any:
        op, operand = items
        span = self._span(op)
        if (
            op.value == "-"
            and is_number(operand)
            and (operand.span.line, operand.span.col) == (span.line, span.col + 1)
        ):
            # `-1` is a number, as Python users read it; `-(1)` and `- 1` stay operations.
            return ir.Const(value=-operand.value, span=span)
        return ir.UnaryOp(op=op.value, operand=operand, span=span)

    @rule
    def call(self, items: Items) -> ir.Call:
        func, arguments = items
        args, kwargs, spans, spread = arguments if arguments is not None else ([], {}, {}, [])
        return ir.Call(
            func=func,
            args=args,
            kwargs=kwargs,
            spread=spread,
            kwarg_spans=spans,
            span=self._span(func),
        )

    @rule
    def arguments(self, items: Items) -> tuple[Items, dict, dict[str, Span], Items]:
        args: Items = []
        kwargs: dict = {}
        key_spans: dict[str, Span] = {}
        spread: Items = []
        for item in items:
            if isinstance(item, _Spread):
                spread.append(item.value)
            elif isinstance(item, tuple):
                key, value, span = item
                if key in kwargs:
                    raise DSLSyntaxError(
                        f"keyword argument '{key}' is given twice",
                        span,
                        notes=[Note("first given here", key_spans[key])],
                    )
                kwargs[key] = value
                key_spans[key] = span
            elif kwargs or spread:
                raise DSLSyntaxError(
                    "a positional argument follows a keyword argument",
                    item.span,
                    hint="put positional arguments (and '*' ones) first",
                )
            else:
                args.append(item)
        return args, kwargs, key_spans, spread

    @rule
    def starred(self, items: Items) -> ir.Starred:
        star, value = items
        return ir.Starred(value=value, span=self._span(star))

    @rule
    def spread(self, items: Items) -> _Spread:
        stars, value = items
        return _Spread(value, self._span(stars))

    @rule
    def kwarg(self, items: Items) -> tuple:
        return items[0].value, items[1], self._tok(items[0])

    @rule
    def index(self, items: Items) -> ir.Index:
        value, index = items
        return ir.Index(value=value, index=index, span=self._span(value))

    @rule
    def subscript_tuple(self, items: Items) -> ir.TupleExpr:
        return ir.TupleExpr(items=items, span=self._span(items[0]))

    @rule
    def slice(self, items: Items) -> ir.Slice:
        start, colon, stop, step = items
        span = self._span(colon if start is None else start)
        return ir.Slice(start=start, stop=stop, step=step, span=span)

    @rule
    def attr(self, items: Items) -> ir.Attr:
        value, name = items
        return ir.Attr(value=value, attr=name.value, span=self._span(value))

    @rule
    def number(self, items: Items) -> ir.Const:
        return ir.Const(value=number(items[0].value), span=self._tok(items[0]))

    @rule
    def string(self, items: Items) -> ir.Const:
        return ir.Const(value=unescape(items[0].value[1:-1]), span=self._tok(items[0]))

    @rule
    def name(self, items: Items) -> ir.Name:
        return ir.Name(id=self._name(items[0]), span=self._tok(items[0]))

    @rule
    def true(self, items: Items) -> ir.Const:
        return ir.Const(value=True, span=self._last())

    @rule
    def false(self, items: Items) -> ir.Const:
        return ir.Const(value=False, span=self._last())

    @rule
    def none(self, items: Items) -> ir.Const:
        return ir.Const(value=None, span=self._last())

    @rule
    def list_comp(self, items: Items) -> ir.Comprehension:
        bracket, element, *clauses = items
        return ir.Comprehension(
            element=element, key=None, clauses=clauses, span=self._span(bracket)
        )

    @rule
    def dict_comp(self, items: Items) -> ir.Comprehension:
        brace, key, value, *clauses = items
        return ir.Comprehension(element=value, key=key, clauses=clauses, span=self._span(brace))

    @rule
    def comp_clause(self, items: Items) -> ir.CompFor:
        keyword, target, iterable, *conditions = items
        return ir.CompFor(for_=target, in_=iterable, if_=conditions, span=self._span(keyword))

    @rule
    def target_name(self, items: Items) -> str:
        return self._name(items[0])

    @rule
    def target_list(self, items: Items) -> list:
        return [item for item in items if item is not None]

    @rule
    def target_paren(self, items: Items) -> Any:
        return items[1]

    @rule
    def list(self, items: Items) -> ir.ListExpr:
        bracket, *values = items
        return ir.ListExpr(items=[i for i in values if i is not None], span=self._span(bracket))

    @rule
    def empty_tuple(self, items: Items) -> ir.TupleExpr:
        return ir.TupleExpr(items=[], span=self._span(items[0]))

    @rule
    def paren(self, items: Items) -> Any:
        paren, value = items
        self.parenthesized[id(value)] = (value, paren)
        return value

    @rule
    def tuple_one(self, items: Items) -> ir.TupleExpr:
        paren, value = items
        return ir.TupleExpr(items=[value], span=self._span(paren))

    @rule
    def tuple_many(self, items: Items) -> ir.TupleExpr:
        paren, *values = items
        return ir.TupleExpr(items=[i for i in values if i is not None], span=self._span(paren))

    @rule
    def dict(self, items: Items) -> ir.DictExpr:
        brace, *pairs = items
        pairs = [i for i in pairs if i is not None]
        return ir.DictExpr(
            keys=[k for k, _ in pairs], values=[v for _, v in pairs], span=self._span(brace)
        )

    @rule
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
