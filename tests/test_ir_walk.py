"""`Node.children()`: the one generic walk over the IR."""

from __future__ import annotations

from collections.abc import Iterator

from dsl import ir
from dsl.syntax.parse_net import parse_expression, parse_net


def _walk(node: ir.Node) -> Iterator[ir.Node]:
    yield node
    for child in node.children():
        yield from _walk(child)


def test_children_come_in_field_order() -> None:
    call = parse_expression("f(a, b[1], k={'x': y}, m=-z)")
    assert [type(c).__name__ for c in call.children()] == [
        "Name",
        "Name",
        "Index",
        "DictExpr",
        "UnaryOp",
    ]
    assert [c.id for c in call.children() if isinstance(c, ir.Name)] == ["f", "a"]


def test_children_reach_every_node_of_a_spec() -> None:
    spec = parse_net(
        "net N(c=3):\n    input x: [B, c]\n    for i in range(2):\n        x = relu(x)\n    return x\n"
    )
    names = [n.id for n in _walk(spec) if isinstance(n, ir.Name)]
    assert names == ["B", "c", "range", "relu", "x", "x"]


def test_leaves_have_no_children() -> None:
    assert list(ir.Const(value=1).children()) == []
    assert list(ir.Name(id="x").children()) == []
