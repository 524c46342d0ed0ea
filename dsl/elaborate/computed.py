"""Buffers computed when the model is built: `buffer index = <expression over torch
functions>`. The expression is elaborated as forward code is (shape and dtype on meta,
under the limits); the part of the body's graph it needs becomes the buffer's own small
graph, run once when the model is built, on the device it is built on. That part may read
no input, parameter, buffer or module: the value is data, not recomputed in forward, and
its nodes leave the forward unless forward uses them too (`GraphBuilder.finish`)."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from dsl import ir
from dsl.elaborate import limits
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.training import METHOD_PREFIX
from dsl.elaborate.values import Val, kind_of
from dsl.errors import EvaluationError, SizeLimitError, StructureError
from dsl.plan import ComputedTensor, TensorSpec
from dsl.source import Span
from dsl.syntax.printer import print_expr

_HINT = "a computed buffer is made from parameters, sizes written as numbers and torch's functions (arange, meshgrid, stack, ...)"


def computed_buffer(frame: Frame, stmt: ir.TensorDecl, name: str, persistent: bool) -> TensorSpec:
    """`buffer name = <expression>`: its shape and dtype are the value's."""
    builder = frame.builder
    if builder is None or stmt.init is None:
        raise StructureError(
            f"buffer '{name}' needs a shape or a value",
            stmt.span,
            hint=f"write 'buffer {name}: [n] = zeros()' or 'buffer {name} = arange(n)'",
        )
    builder.made_at_build = True  # its tensors are made once, not in forward
    try:
        value = frame.eval(stmt.init)
    finally:
        builder.made_at_build = False
    if not isinstance(value, Val):
        raise EvaluationError(
            f"buffer '{name}' needs a tensor value, not {kind_of(value)}",
            stmt.init.span,
            hint="make it a tensor, e.g. tensor([1, 2, 3]) or arange(n)",
        )
    cone = _cone(value.node, name, stmt.init)
    graph = fx.Graph()
    copies: dict[fx.Node, fx.Node] = {}
    for node in cone:
        copies[node] = graph.node_copy(node, copies.__getitem__)
    graph.output(copies[value.node])
    _check_work(graph, name, stmt.init.span)
    builder.constant_nodes.extend(cone)
    shape = tuple(int(size) for size in value.meta.shape)
    limits.check_dims(list(shape), stmt.span, f"buffer '{name}'")
    computed = ComputedTensor(graph, print_expr(stmt.init), stmt.init.span)
    return TensorSpec("buffer", shape, value.meta.dtype, computed, persistent, False, stmt.span)


class _Elements(fx.Interpreter):
    """Runs the value's graph on meta, counting the elements of every tensor it makes."""

    def __init__(self, graph: fx.Graph) -> None:
        super().__init__(fx.GraphModule(torch.nn.Module(), graph))
        self.elements = 0

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if n.op != "output":  # the value itself was counted where it was made
            self.elements += _elements(out)
        return out


def _elements(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, list | tuple):  # meshgrid, split, ...
        return sum(_elements(item) for item in value)
    return 0


def _check_work(graph: fx.Graph, name: str, span: Span) -> None:
    """Computing the value allocates its intermediates too: together they are bounded as a
    model's tensors are (limits.DEFAULT_MAX_PARAMS elements), found on meta by validate."""
    counter = _Elements(graph)
    with torch.device("meta"):
        counter.run()
    if counter.elements > limits.DEFAULT_MAX_PARAMS:
        raise SizeLimitError(
            f"computing buffer '{name}' makes tensors of {counter.elements:,} elements in all; "
            f"the limit is {limits.DEFAULT_MAX_PARAMS:,}",
            span,
            hint="compute the value from smaller tensors",
        )


_READS = {
    "placeholder": "the input '{}'",
    "get_attr": "'{}', a member of the module",
    "call_module": "the module '{}'",
}


def _cone(out: fx.Node, name: str, expr: ir.ExprNode) -> list[fx.Node]:
    """The nodes `out` is computed from, in graph order; refused if one reads the module or
    its inputs."""
    seen: set[fx.Node] = set()
    stack = [out]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        if node.op in _READS:
            what = _READS[node.op].format(node.target)
            if node.target == "training" or str(node.target).startswith(METHOD_PREFIX):
                what = "'training', the module's mode"
            raise EvaluationError(
                f"buffer '{name}' is computed when the model is built; it cannot read {what}",
                expr.span,
                hint=f"{_HINT}; a value that depends on the input is computed in forward, as a plain value",
            )
        seen.add(node)
        stack.extend(node.all_input_nodes)
    return [node for node in out.graph.nodes if node in seen]
