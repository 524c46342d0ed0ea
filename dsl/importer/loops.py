"""Repeated children of a container written as a `for` loop: consecutive children that are
the same, or differ only by integers that step evenly with their index."""

from __future__ import annotations

import re
from typing import Any

from dsl import ir
from dsl.importer.irwalk import literals, map_nodes, names_in, replace_at, skeleton
from dsl.syntax.printer import print_expr

_LOOP_NAMES = ("i", "j", "k", "n", "m")
_NUMBERED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*?)([0-9]+)")


def fold_loops(node: Any) -> Any:
    """`node` with every container body's runs of children folded into loops."""

    def fold(item: ir.Node) -> ir.Node:
        if isinstance(item, ir.Container):
            return item.replace(body=_fold(list(item.body)))
        return item

    return map_nodes(node, fold)


def _fold(stmts: list[Any]) -> list[Any]:
    out: list[Any] = []
    start = 0
    while start < len(stmts):
        end, probe = start + 1, start + 2
        while probe <= len(stmts):  # a pair may need a third to show its step
            if _steps(stmts[start:probe]) is not None:
                end = probe
            elif probe - start >= 3:
                break
            probe += 1
        out.append(_loop(stmts[start:end]) if end - start >= 2 else stmts[start])
        start = end
    return out


def _as_layer(stmt: Any) -> ir.Layer | None:
    """A child for comparison: `Block()` as it is, `layer_3 = Block()` as `(3, Block())`
    (its name's number the first literal)."""
    if isinstance(stmt, ir.Layer):
        return stmt
    match = (
        _NUMBERED.fullmatch(stmt.let[0]) if isinstance(stmt, ir.Let) and not stmt.define else None
    )
    if match is None or len(stmt.let) != 1:
        return None
    pair = ir.TupleExpr(items=[ir.Const(value=match[1]), ir.Const(value=int(match[2])), stmt.value])
    return ir.Layer(layer=pair)


def _steps(run: list[Any]) -> dict[int, tuple[int, int]] | None:
    """For each literal that changes along `run`: (first value, step); None when `run`
    cannot be one loop."""
    layers = [_as_layer(s) for s in run]
    if any(layer is None for layer in layers):
        return None
    run = layers
    if any(skeleton(s) != skeleton(run[0]) for s in run[1:]):
        return None
    columns = zip(*(literals(s) for s in run), strict=True)
    steps: dict[int, tuple[int, int]] = {}
    for position, column in enumerate(columns):
        values = [const.value for const, _ in column]
        if all((type(v), v) == (type(values[0]), values[0]) for v in values):
            continue
        if len(run) < 3 or not all(type(v) is int for v in values):
            return None
        step = values[1] - values[0]
        if any(values[k] != values[0] + k * step for k in range(len(values))):
            return None
        steps[position] = (values[0], step)
    return steps


def _loop(run: list[Any]) -> ir.For:
    steps = _steps(run) or {}
    taken = names_in(run[0])
    var = next((name for name in _LOOP_NAMES if name not in taken), "index")
    first = _as_layer(run[0])
    body: Any = replace_at(first, {pos: _affine(a, b, var) for pos, (a, b) in steps.items()})
    if isinstance(run[0], ir.Let):  # `layer_{i + 1} = Block()`
        prefix, number, value = body.layer.items
        index = print_expr(number)
        body = ir.Let(let=[f"{prefix.value}{{{index}}}"], value=value)
    count = ir.Call(func=ir.Name(id="range"), args=[ir.Const(value=len(run))])
    return ir.For(for_=var, in_=count, body=[body])


def _affine(first: int, step: int, var: str) -> ir.ExprNode:
    term: ir.ExprNode = ir.Name(id=var)
    if step != 1:
        term = ir.BinOp(op="*", left=ir.Const(value=step), right=term)
    return term if first == 0 else ir.BinOp(op="+", left=ir.Const(value=first), right=term)
