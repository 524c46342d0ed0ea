"""Rebuilding IR with some literals replaced: the one walk that block parameters, loops and
training-mode merging share. Literals are visited in field order, so two bodies of the same
skeleton visit their literals in the same order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsl import ir

# (literal, hint) -> its replacement; the hint names what the literal is: a keyword's name,
# a parameter's name, or "value".
Visit = Callable[[ir.Const, str], ir.ExprNode]
Slots = Callable[[ir.Call], list[str]]


def _no_slots(call: ir.Call) -> list[str]:
    return []


def rebuild(node: Any, visit: Visit, slots: Slots = _no_slots, hint: str = "value") -> Any:
    """`node` with every literal replaced by `visit(literal, hint)`."""
    if isinstance(node, ir.Const):
        return visit(node, hint)
    if isinstance(node, list):
        return [rebuild(item, visit, slots, hint) for item in node]
    if isinstance(node, dict):
        return {key: rebuild(value, visit, slots, str(key)) for key, value in node.items()}
    if not isinstance(node, ir.Node):
        return node
    updates: dict[str, Any] = {}
    for key, value in node.__dict__.items():
        if key in ir.POSITION_FIELDS or value is None or isinstance(value, str | bool):
            continue
        if isinstance(node, ir.Call) and key == "args":
            names = slots(node)
            new = [
                rebuild(arg, visit, slots, names[i] if i < len(names) else hint)
                for i, arg in enumerate(value)
            ]
        else:
            new = rebuild(value, visit, slots, hint)
        updates[key] = new
    return node.replace(**updates) if updates else node


def literals(node: Any, slots: Slots = _no_slots) -> list[tuple[ir.Const, str]]:
    """Every literal of `node` with its hint, in the order `rebuild` visits them."""
    found: list[tuple[ir.Const, str]] = []

    def visit(const: ir.Const, hint: str) -> ir.ExprNode:
        found.append((const, hint))
        return const

    rebuild(node, visit, slots)
    return found


def skeleton(node: Any) -> Any:
    """`node` with each literal replaced by its type: equal skeletons differ in values only."""
    return rebuild(node, lambda c, _: ir.Const(value=f"\0{type(c.value).__name__}"))


def replace_at(node: Any, replacements: dict[int, ir.ExprNode]) -> Any:
    """`node` with the literals at these positions (in visiting order) replaced."""
    counter = iter(range(1 << 62))

    def visit(const: ir.Const, hint: str) -> ir.ExprNode:
        return replacements.get(next(counter), const)

    return rebuild(node, visit)


def map_nodes(node: Any, fn: Callable[[ir.Node], ir.Node]) -> Any:
    """`node` rebuilt bottom-up, each node replaced by `fn(node)` after its children."""
    if isinstance(node, list):
        return [map_nodes(item, fn) for item in node]
    if isinstance(node, dict):
        return {key: map_nodes(value, fn) for key, value in node.items()}
    if not isinstance(node, ir.Node):
        return node
    updates = {
        key: map_nodes(value, fn)
        for key, value in node.__dict__.items()
        if key not in ir.POSITION_FIELDS and isinstance(value, ir.Node | list | dict)
    }
    return fn(node.replace(**updates) if updates else node)


def substitute(node: Any, names: dict[str, ir.ExprNode]) -> Any:
    """`node` with each call of a placeholder name `§n()` replaced by its expression."""

    def swap(item: ir.Node) -> ir.Node:
        if isinstance(item, ir.Call) and isinstance(item.func, ir.Name) and item.func.id in names:
            return names[item.func.id]
        return item

    return map_nodes(node, swap)


def names_in(node: Any) -> set[str]:
    """Every name `node` binds or reads."""
    found: set[str] = set()
    stack = [node] if not isinstance(node, list) else list(node)
    while stack:
        item = stack.pop()
        if isinstance(item, ir.Name):
            found.add(item.id)
        elif isinstance(item, ir.Let):
            found.update(item.let)
        elif isinstance(item, ir.ParamDecl | ir.BufferDecl):
            found.add(item.name)
        elif isinstance(item, ir.Input):
            found.add(item.input)
        elif isinstance(item, ir.For):
            found.update(ir.target_names(item.for_))
        if isinstance(item, ir.Node):
            stack.extend(item.children())
    return found
