"""Build-time constructs Python users reach for, as the evaluator and the bodies run them:
loop targets that unpack (`for i, (c, n) in ...`), comprehensions, `x += y` (a new value
under the same name, never an in-place update), and `*args` / `**kwargs` in calls."""

from __future__ import annotations

from typing import Any, Protocol

from dsl import ir
from dsl.elaborate.context import Context
from dsl.elaborate.values import MAX_LOOP, ShapeView, as_hashable, kind_of, to_static
from dsl.errors import ArgumentError, EvaluationError, LimitError, UndefinedValueError
from dsl.source import Span
from dsl.syntax.printer import print_target


class Scope(Protocol):
    """What these constructs evaluate in (`dsl.elaborate.evaluate.Frame`)."""

    context: Context
    scope: dict[str, Any]

    def eval(self, expr: ir.ExprNode) -> Any: ...
    def static(self, expr: ir.ExprNode) -> Any: ...
    def condition(self, expr: ir.ExprNode) -> bool: ...
    def child_scope(self, extra: dict[str, Any]) -> Any: ...


# ----------------------------------------------------------------------------- loops


def iterate(items: Any, source: ir.ExprNode, target: ir.Target) -> list[Any]:
    """The items a build-time loop (or a comprehension's clause) runs over, bounded."""
    if isinstance(items, ShapeView):
        items = items.dims()
    try:
        iterator = list(items.keys() if isinstance(items, dict) else items)
    except TypeError:
        count = source.id if isinstance(source, ir.Name) else items
        hint = (
            f"to repeat {items} times, write 'for {print_target(target, source.span)} in range({count}):'"
            if isinstance(items, int) and not isinstance(items, bool)
            else None
        )
        raise EvaluationError(
            f"cannot loop over {kind_of(items)}", source.span, hint=hint
        ) from None
    if len(iterator) > MAX_LOOP:
        raise LimitError(
            f"the loop runs {len(iterator)} times; the limit is {MAX_LOOP}", source.span
        )
    return iterator


def bind_target(scope: dict[str, Any], target: ir.Target, value: Any, span: Span) -> None:
    """Bind a loop's target: a name takes the item, a list of targets unpacks it."""
    if isinstance(target, str):
        scope[target] = value
        return
    if isinstance(value, ShapeView):
        value = value.dims()
    if not isinstance(value, list | tuple):
        raise EvaluationError(
            f"cannot unpack {kind_of(value)} into ({print_target(target)})",
            span,
            hint="each item unpacked by the loop's target must be a list or tuple of as many items",
        )
    if len(value) != len(target):
        raise EvaluationError(
            f"cannot unpack {len(value)} values into {len(target)} names ({print_target(target)})",
            span,
            hint=f"the item is {to_static(value, span)!r}",
        )
    for inner, item in zip(target, value):
        bind_target(scope, inner, item, span)


# ----------------------------------------------------------------------------- comprehensions


def comprehension(frame: Scope, expr: ir.Comprehension) -> list | dict:
    """`[e for c in cs if ...]` or `{k: v for ...}`: its names live in a scope of its own.
    Items may be tensors computed in forward (`[conv(t) for t in (a, b)]`)."""
    inner = frame.child_scope({})
    out: list | dict = [] if expr.key is None else {}
    _clauses(inner, expr, 0, out)
    frame.context.budget.spend_on_value(out, expr.span, "a comprehension")
    return out


def _clauses(frame: Scope, expr: ir.Comprehension, index: int, out: list | dict) -> None:
    if index == len(expr.clauses):
        if isinstance(out, dict):
            assert expr.key is not None
            out[as_hashable(frame.static(expr.key), expr.key.span)] = frame.eval(expr.element)
        else:
            out.append(frame.eval(expr.element))
        return
    clause = expr.clauses[index]
    value = frame.eval(clause.in_)
    if not isinstance(value, list | tuple | ShapeView | dict):
        value = to_static(value, clause.in_.span)
    for item in iterate(value, clause.in_, clause.for_):
        frame.context.step(clause.span)
        bind_target(frame.scope, clause.for_, item, clause.span)
        if all(frame.condition(condition) for condition in clause.if_):
            _clauses(frame, expr, index + 1, out)


def unpacked_items(frame: Scope, items: list[ir.ExprNode]) -> list[Any]:
    """The items of a list or tuple, `*xs` spread out."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, ir.Starred):
            out.extend(_sequence(frame, item))
        else:
            out.append(frame.eval(item))
    return out


def _sequence(frame: Scope, item: ir.Starred) -> list[Any]:
    value = frame.eval(item.value)
    if isinstance(value, ShapeView):
        return list(value.dims())
    if isinstance(value, list | tuple):
        return list(value)
    raise EvaluationError(
        f"'*' unpacks a list or tuple, not {kind_of(value)}",
        item.span,
        hint="write '*xs' where xs is a list, a tuple or a shape",
    )


# ----------------------------------------------------------------------------- assignments


def let_value(stmt: ir.Let, scope: dict[str, Any]) -> ir.ExprNode:
    """The value a `Let` binds: `x += y` is `x = x + y`, a new value under the same name
    (on a tensor, a new node: never an in-place update of the input)."""
    if stmt.op is None:
        return stmt.value
    if len(stmt.let) != 1 or stmt.define is not None:
        raise EvaluationError(f"'{stmt.op}=' updates one name with a value", stmt.span)
    if stmt.let[0] not in scope:
        name = stmt.let[0]
        raise UndefinedValueError(
            f"'{name} {stmt.op}= ...' updates '{name}', which has no value yet",
            stmt.span._replace(end_line=stmt.span.line, end_col=stmt.span.col + len(name)),
            hint=f"bind it first: '{name} = ...'",
        )
    target = ir.Name(id=stmt.let[0], span=stmt.span)
    return ir.BinOp(op=stmt.op, left=target, right=stmt.value, span=stmt.span)


# ----------------------------------------------------------------------------- calls


def has_unpacking(call: ir.Call) -> bool:
    return bool(call.spread) or any(type(arg) is ir.Starred for arg in call.args)


# Calls with `*`/`**` as plain calls, by (call, how many items each unpacked, the keywords):
# the same shape of call is the same IR, so caches keyed by a call's identity stay right.
_SPREAD_CALLS: dict[tuple, tuple[ir.Call, ir.Call]] = {}
_MAX_SPREAD_CALLS = 4096


def spread_call(frame: Scope, call: ir.Call) -> tuple[ir.Call, Any]:
    """`f(a, *xs, k=1, **kw)` as the plain call `f(a, __arg0, __arg1, k=1, n=__arg2)`, and a
    frame where those names hold the unpacked items."""
    values: dict[str, Any] = {}
    positional: list[tuple[ir.ExprNode, int]] = []  # (argument, items it unpacked; -1: none)
    for arg in call.args:
        if isinstance(arg, ir.Starred):
            items = _sequence(frame, arg)
            positional.append((arg, len(items)))
            for item in items:
                values[f"__arg{len(values)}"] = item
        else:
            positional.append((arg, -1))
    keywords: list[tuple[str, ir.ExprNode]] = []
    for mapping in call.spread:
        for key, item in _mapping(frame, mapping).items():
            if key in call.kwargs or any(key == k for k, _ in keywords):
                raise ArgumentError(
                    f"keyword argument '{key}' is given twice",
                    mapping.span,
                    hint=f"'{key}' is written as a keyword and is a key of this '**' dict too",
                )
            keywords.append((key, mapping))
            values[f"__arg{len(values)}"] = item
    shape = (id(call), tuple(n for _, n in positional), tuple(k for k, _ in keywords))
    found = _SPREAD_CALLS.get(shape)
    if found is None or found[0] is not call:
        if len(_SPREAD_CALLS) >= _MAX_SPREAD_CALLS:
            _SPREAD_CALLS.clear()
        found = _SPREAD_CALLS[shape] = (call, _plain_call(call, positional, keywords))
    return found[1], frame.child_scope(values)


def _plain_call(
    call: ir.Call, positional: list[tuple[ir.ExprNode, int]], keywords: list[tuple[str, Any]]
) -> ir.Call:
    names = iter(range(10**9))
    args: list[ir.ExprNode] = []
    for arg, count in positional:
        if count < 0:
            args.append(arg)
        else:
            args += [ir.Name(id=f"__arg{next(names)}", span=arg.span) for _ in range(count)]
    kwargs = dict(call.kwargs)
    spans = dict(call.keyword_spans())
    for key, mapping in keywords:
        kwargs[key] = ir.Name(id=f"__arg{next(names)}", span=mapping.span)
        spans[key] = mapping.span
    return ir.Call(
        func=call.func, args=args, kwargs=kwargs, spread=[], kwarg_spans=spans, span=call.span
    )


def _mapping(frame: Scope, expr: ir.ExprNode) -> dict[str, Any]:
    value = frame.eval(expr)
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise EvaluationError(
            f"'**' unpacks a dict of keyword arguments, not {kind_of(value)}",
            expr.span,
            hint='write "**options" where options is a dict such as {"bias": false}',
        )
    return value
