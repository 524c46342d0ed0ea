"""What a hand-written forward does that a traced graph leaves out, put back before the
code is generated: an op with a `training` parameter the spec leaves out gets
`training=self.training`; a `dropout_p` given to one without (attention) applies in training
only; a tensor made from sizes (`arange(T)`, `zeros(...)`) without a `device` lands on the
first input's. Which ops these are is read from their signatures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.fx as fx

from dsl.torchlib import catalog, ops


def python_code(graph: fx.Graph) -> fx.graph.PythonCode:
    """The Python source of `graph` as the forward of a module (`self`)."""
    return _as_written_by_hand(graph).python_code(root_module="self")


def _as_written_by_hand(graph: fx.Graph) -> fx.Graph:
    """The graph with its calls doing what a hand-written forward's do (a copy, where any
    call needs a change)."""
    if not any(_rule(node) for node in graph.nodes):
        return graph
    copy = fx.Graph()
    copy.output(copy.graph_copy(graph, {}))
    reads = _Reads(copy)
    for node in list(copy.nodes):
        rule = _rule(node)
        if rule is not None:
            _REWRITES[rule](node, reads)
    return copy


class _Reads:
    """What a hand-written forward reads from `self` and its input (`self.training`,
    `x.device`): each made once, at the top of the graph, on first use."""

    def __init__(self, graph: fx.Graph) -> None:
        self.graph = graph
        self.made: dict[str, fx.Node] = {}

    def __call__(self, what: str) -> fx.Node:
        if what not in self.made:
            first = next(n for n in self.graph.nodes if n.op != "placeholder")
            with self.graph.inserting_before(first):
                if what == "training":
                    self.made[what] = self.graph.get_attr("training")
                else:
                    source = next(n for n in self.graph.nodes if n.op == "placeholder")
                    self.made[what] = self.graph.create_node(
                        "call_function", getattr, (source, what), name=f"{source.name}_{what}"
                    )
        return self.made[what]


def _rule(node: fx.Node) -> str | None:
    params = _parameters(node.target) if node.op == "call_function" else None
    if params is None:
        return None
    if "training" in params.names:
        return None if params.passed("training", node.args, node.kwargs) else "training"
    if "dropout_p" in params.names and params.passed("dropout_p", node.args, node.kwargs):
        return None if _argument(node, params, "dropout_p") in (0, 0.0) else "dropout_p"
    if catalog.is_factory(node.target) and not params.passed("device", node.args, node.kwargs):
        has_input = any(n.op == "placeholder" for n in node.graph.nodes)
        return "device" if has_input else None
    return None


def _pass_training(node: fx.Node, reads: _Reads) -> None:
    node.kwargs = {**node.kwargs, "training": reads("training")}


def _gate_dropout_p(node: fx.Node, reads: _Reads) -> None:
    """`dropout_p=p` -> `dropout_p=when_training(p, self.training)`."""
    params = _parameters(node.target)
    assert params is not None
    p = _argument(node, params, "dropout_p")
    with node.graph.inserting_before(node):
        gated = node.graph.create_node(
            "call_function", ops.when_training, (p, reads("training")), name="dropout_p"
        )
    if "dropout_p" in node.kwargs:
        node.kwargs = {**node.kwargs, "dropout_p": gated}
    else:
        index = params.names.index("dropout_p")
        node.args = (*node.args[:index], gated, *node.args[index + 1 :])


def _place_on_input_device(node: fx.Node, reads: _Reads) -> None:
    node.kwargs = {**node.kwargs, "device": reads("device")}


_REWRITES: dict[str, Callable[[fx.Node, _Reads], None]] = {
    "training": _pass_training,
    "dropout_p": _gate_dropout_p,
    "device": _place_on_input_device,
}


def _argument(node: fx.Node, params: catalog.Params, name: str) -> Any:
    return node.kwargs[name] if name in node.kwargs else node.args[params.names.index(name)]


def _parameters(target: Any) -> catalog.Params | None:
    try:
        return catalog.parameters(target)
    except TypeError:  # an unhashable callable a user registered: no mode to follow
        return None
