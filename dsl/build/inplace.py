"""In-place residual adds in generated code, where they are provably safe.

torchvision's blocks end with `out += identity`: the sum is written into `out`'s memory
instead of a new tensor, so a block holds one tensor less at its peak. The language has
no in-place operations; the code generator makes `a + b` into `a.add_(b)` only when no
one can tell the difference:

- `a` is the output of a module the generated code calls (a convolution, linear layer or
  normalisation of torch's own, whose output is a new tensor, never an input or a view),
  so the generated code owns it;
- that module's backward does not read its output (theirs read their inputs only; relu,
  sigmoid or softmax read their outputs, and are not on the list);
- the add is the only reader of `a`, so it is dead after the add and aliased by nothing;
- the sum has `a`'s shape and dtype (`dsl.elaborate.graph_ops` marks such adds);
- the module is the one the body declared: a derived net that replaces members builds
  its base without in-place adds (`_Builder` in compile.py), since a replacement such as
  `Identity` would return its input.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import torch.fx as fx
from torch import nn

from dsl.elaborate.graph_ops import SHAPED_AS_FIRST
from dsl.plan import LeafSpec

# Modules whose output is a new tensor that their backward does not read (exact classes:
# a subclass may return anything).
OWNED_OUTPUT: frozenset[type] = frozenset(
    {
        *(nn.Conv1d, nn.Conv2d, nn.Conv3d),
        *(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
        nn.Linear,
        *(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d),
        *(nn.LayerNorm, nn.GroupNorm),
    }
)


def inplace_adds(graph: fx.Graph, members: Mapping[str, object]) -> tuple[str, ...]:
    """The names of the add nodes of `graph` that may run in place."""
    return tuple(node.name for node in graph.nodes if _safe(node, members))


def _safe(node: fx.Node, members: Mapping[str, object]) -> bool:
    if not (node.op == "call_function" and node.target is operator.add):
        return False
    if not node.meta.get(SHAPED_AS_FIRST) or node.kwargs or len(node.args) != 2:
        return False
    left, right = node.args
    if not isinstance(left, fx.Node) or left is right or len(left.users) != 1:
        return False
    if left.op != "call_module":
        return False
    spec = members.get(str(left.target))
    return isinstance(spec, LeafSpec) and type_of(spec) in OWNED_OUTPUT


def type_of(spec: LeafSpec) -> type | None:
    factory = spec.layer.factory
    return factory if isinstance(factory, type) else None


def with_inplace_adds(graph: fx.Graph, names: tuple[str, ...]) -> fx.Graph:
    """A copy of `graph` whose adds named in `names` are `a.add_(b)`."""
    if not names:
        return graph
    copy = fx.Graph()
    copy.output(copy.graph_copy(graph, {}))
    for node in copy.nodes:
        if node.name in names:
            node.op, node.target = "call_method", "add_"
    return copy
