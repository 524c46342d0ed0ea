"""Repeated children of a container written as a `for` loop: consecutive children that are
the same, or differ only by integers that step evenly with their index."""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.importer.irwalk import literals, make, map_nodes, names_in, replace_at, skeleton

_LOOP_NAMES = ("i", "j", "k", "n", "m")


def fold_loops(node: Any) -> Any:
    """`node` with every container body's runs of children folded into loops."""

    def fold(item: ir.Node) -> ir.Node:
        if isinstance(item, ir.Container):
            return item.model_copy(update={"body": _fold(list(item.body))})
        return item

    return map_nodes(node, fold)


def _fold(stmts: list[Any]) -> list[Any]:
    out: list[Any] = []
    start = 0
    while start < len(stmts):
        end = start + 1
        while end < len(stmts) and _steps(stmts[start : end + 1]) is not None:
            end += 1
        out.append(_loop(stmts[start:end]) if end - start >= 2 else stmts[start])
        start = end
    return out


def _steps(run: list[Any]) -> dict[int, tuple[int, int]] | None:
    """For each literal that changes along `run`: (first value, step); None when `run`
    cannot be one loop."""
    if not all(isinstance(s, ir.Layer) for s in run):
        return None
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
    body = replace_at(run[0], {pos: _affine(a, b, var) for pos, (a, b) in steps.items()})
    count = ir.Call(func=ir.Name(id="range"), args=[ir.Const(value=len(run))])
    return make(ir.For, {"for": var, "in": count, "body": [body]})


def _affine(first: int, step: int, var: str) -> ir.ExprNode:
    term: ir.ExprNode = ir.Name(id=var)
    if step != 1:
        term = ir.BinOp(op="*", left=ir.Const(value=step), right=term)
    return term if first == 0 else ir.BinOp(op="+", left=ir.Const(value=first), right=term)
