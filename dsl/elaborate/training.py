"""`if training:` and `a if training else b`: both arms are elaborated (and shape-checked),
each into a graph of its own; the body gets one node that runs them, generated as a method
of the module whose body is a real `if self.training:` (dsl.build.branch_code). Values the
arms assign and both give alike (same structure, shapes and dtypes) are one value after
the branch; others are an error where they are used."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.fx as fx
import torch.utils._pytree as pytree

from dsl import ir
from dsl.elaborate.graph import GraphBuilder
from dsl.elaborate.values import (
    TRAINING,
    Dim,
    Handle,
    Parts,
    Val,
    kind_of,
    meta_arg,
    node_arg,
    vals_in,
)
from dsl.errors import EvaluationError, Note, StructureError
from dsl.records import field, record
from dsl.source import Span
from dsl.torchlib import catalog, fx_private, shapes

BRANCH = "training_branch"  # the node.meta key holding the arms' graphs: (training, eval)
METHOD_PREFIX = "_training_branch_"
CONFLICT = "_mode conflict "  # scope key prefix: a name the two arms give differently
# scope key prefixes of a tensor one arm gives and the other not (None in that mode, as
# torchvision's `aux1 = None; if self.training: aux1 = self.aux1(x)`): a later arm of the
# same mode reads it, anything else gets the CONFLICT error
MODE_ONLY = ("_training only ", "_eval only ")


@record
class Arm:
    """One arm, elaborated: its builder, the scope it ended with, its value or return."""

    builder: GraphBuilder
    scope: dict[str, Any]
    value: Any = None
    spans: dict[str, Span] = field(default_factory=dict)


def mode_test(expr: ir.ExprNode, evaluate: Callable[[ir.ExprNode], Any]) -> bool | None:
    """True for `training`, False for `not training`, None for any other condition."""
    if isinstance(expr, ir.UnaryOp) and expr.op == "not":
        inner = mode_test(expr.operand, evaluate)
        return None if inner is None else not inner
    if isinstance(expr, ir.Name) and evaluate(expr) is TRAINING:
        return True
    return None


def elaborate_arm(
    parent: GraphBuilder,
    scope: dict[str, Any],
    run: Callable[[GraphBuilder, dict], Any],
    in_training: bool,
) -> Arm:
    """One arm (the training one when `in_training`), seeing what earlier arms of its
    mode gave."""
    builder = parent.arm()
    arm_scope = dict(scope)
    prefix = MODE_ONLY[0 if in_training else 1]
    for key, value in scope.items():
        name = key.removeprefix(prefix)
        if key.startswith(prefix) and name not in scope:  # unless given in both modes since
            arm_scope[name] = value
    return Arm(builder, arm_scope, run(builder, arm_scope))


def branch_node(parent: GraphBuilder, arms: list[Arm], outputs: list[Any]) -> fx.Node:
    """The node in `parent` that runs the arm the mode picks; `outputs` are each arm's
    result (values), in the same structure."""
    foreign = _foreign_nodes(arms, outputs)
    if any(catalog.is_factory(n.target) for arm in arms for n in arm.builder.graph.nodes):
        # a tensor made from sizes lands on the body's first input's device: pass it first
        first = next((n for n in parent.body_graph.nodes if n.op == "placeholder"), None)
        foreign = [first, *(n for n in foreign if n is not first)] if first else foreign
    graphs = [_closed(arm.builder.graph, out, foreign) for arm, out in zip(arms, outputs)]
    name = f"{METHOD_PREFIX}{parent.branches[0]}"
    parent.branches[0] += 1
    node = parent.node("call_module", name, tuple(foreign))
    node.meta[BRANCH] = tuple(graphs)
    return node


def _foreign_nodes(arms: list[Arm], outputs: list[Any]) -> list[fx.Node]:
    """The values from outside that the arms read, in a fixed order: the method's inputs."""
    found: dict[fx.Node, None] = {}
    for arm, out in zip(arms, outputs):
        graph = arm.builder.graph
        for node in _read_nodes(graph, out):
            if node.graph is not graph:
                found[node] = None
    return list(found)


def _read_nodes(graph: fx.Graph, out: Any) -> Iterator[fx.Node]:
    for node in graph.nodes:
        yield from node.all_input_nodes
    yield from (leaf for leaf in pytree.tree_leaves(node_arg(out)) if isinstance(leaf, fx.Node))


def _closed(graph: fx.Graph, out: Any, foreign: list[fx.Node]) -> fx.Graph:
    """A copy of an arm's graph whose outside values are placeholders (the same names in
    both arms), ending in `out`; the arm's own graph is emptied, which unlinks it from
    the outside values it read."""
    graph.output(node_arg(out))
    closed = fx.Graph()
    val_map = {node: closed.placeholder(node.name) for node in foreign}
    closed.output(closed.graph_copy(graph, val_map))
    for node in reversed(graph.nodes):
        graph.erase_node(node)
    return closed


# -- where the arms meet
def agree(a: Any, b: Any) -> bool:
    """Whether two values are alike: the same structure, tensors of the same shape and
    dtype, everything else equal."""
    left, left_spec = pytree.tree_flatten(meta_arg(a))
    right, right_spec = pytree.tree_flatten(meta_arg(b))
    if left_spec != right_spec:
        return False
    return all(_leaves_agree(x, y) for x, y in zip(left, right))


def _leaves_agree(x: Any, y: Any) -> bool:
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        return (
            isinstance(x, torch.Tensor)
            and isinstance(y, torch.Tensor)
            and x.shape == y.shape
            and x.dtype == y.dtype
        )
    return type(x) is type(y) and bool(x == y)


def describe(value: Any, symbols: shapes.Symbols) -> str:
    metas = meta_arg(value)
    if isinstance(metas, torch.Tensor):
        return f"a tensor {shapes.describe(metas, symbols)}"
    if isinstance(metas, tuple | list | dict):
        return f"a {type(metas).__name__} of {len(metas)}"
    return kind_of(value) if vals_in(value) else repr(value)


@record
class Merge:
    """What becomes of the names the arms assign: bound as they are, computed by the
    branch (exports), or an error where used (conflicts)."""

    bound: dict[str, Any] = field(default_factory=dict)
    exports: list[tuple[str, Any, Any]] = field(default_factory=list)
    conflicts: dict[str, EvaluationError] = field(default_factory=dict)


_MISSING = object()


def merge(outer: dict[str, Any], arms: list[Arm], span: Span, symbols: shapes.Symbols) -> Merge:
    result = Merge()
    names = dict.fromkeys(
        name
        for arm, prefix in zip(arms, MODE_ONLY)
        for name, value in arm.scope.items()
        if outer.get(name, _MISSING) is not value
        and outer.get(prefix + name, _MISSING) is not value
        and not name.startswith(CONFLICT)
    )
    for name in names:
        a, b = (arm.scope.get(name, _MISSING) for arm in arms)
        if a is b or _both_members(a, b):
            result.bound[name] = a if a is not _MISSING else b
        elif a is _MISSING or b is _MISSING:
            mode = "training" if b is _MISSING else "eval"
            result.conflicts[name] = _conflict(
                f"'{name}' is given a value in {mode} mode only",
                span,
                "give it a value in both branches of 'if training:', or before it, or use it "
                f"only under 'if {'' if mode == 'training' else 'not '}training:'",
            )
            if isinstance(a if b is _MISSING else b, Val):
                result.exports.append((name, a, b))
        elif (vals_in(a) or vals_in(b)) and agree(a, b) and not _has_dim(a, b):
            result.exports.append((name, a, b))
        elif not (vals_in(a) or vals_in(b) or _has_dim(a, b)) and _same(a, b):
            result.bound[name] = a
        else:
            result.conflicts[name] = _conflict(
                f"'{name}' is {describe(a, symbols)} in training mode but "
                f"{describe(b, symbols)} in eval mode",
                span,
                "after 'if training:', a value must be alike in both modes: the same shape and dtype",
            )
    return result


def _both_members(a: Any, b: Any) -> bool:
    members = (Handle, Parts)
    return (a is _MISSING or isinstance(a, members)) and (b is _MISSING or isinstance(b, members))


def _has_dim(a: Any, b: Any) -> bool:
    leaves = pytree.tree_leaves((a, b), is_leaf=lambda v: isinstance(v, Dim | Val))
    return any(isinstance(leaf, Dim) for leaf in leaves)


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # values with no plain equality
        return False


def _conflict(message: str, span: Span, hint: str) -> EvaluationError:
    notes = [Note("the branch on the mode is here", span)]
    return EvaluationError(message, span, notes=notes, hint=hint)


def merged_values(
    parent: GraphBuilder, arms: list[Arm], result: Merge, span: Span
) -> dict[str, Any]:
    """The names the arms assign, as the body sees them after the branch: exported values
    are read from the branch node's result tuple."""
    values: dict[str, Any] = dict(result.bound)
    if not result.exports and not any(len(arm.builder.graph.nodes) for arm in arms):
        return values  # nothing runs in either mode (members only)
    outputs = [
        tuple(None if side is _MISSING else side for side in export[1:])
        for export in result.exports
    ]
    node = branch_node(parent, arms, [tuple(out[i] for out in outputs) for i in range(2)])
    for index, (name, a, b) in enumerate(result.exports):
        item = parent.node("call_function", operator.getitem, (node, index))
        if a is _MISSING or b is _MISSING:  # given in one mode only: None in the other
            prefix = MODE_ONLY[1 if a is _MISSING else 0]
            fx_private.rename(item, name)
            values[prefix + name] = Val(item, meta_arg(b if a is _MISSING else a), span)
        else:
            values[name] = Val(item, meta_arg(a), span)
    return values


def choose(parent: GraphBuilder, arms: list[Arm], span: Span, symbols: shapes.Symbols) -> Any:
    """The value of `a if training else b`."""
    a, b = (arm.value for arm in arms)
    runs_nothing = not any(len(arm.builder.graph.nodes) for arm in arms)
    if runs_nothing and (
        a is b or (not (vals_in(a) or vals_in(b) or _has_dim(a, b)) and _same(a, b))
    ):
        return a
    if (vals_in(a) or vals_in(b)) and agree(a, b) and not _has_dim(a, b):
        return Val(branch_node(parent, arms, [a, b]), meta_arg(a), span)
    raise EvaluationError(
        f"this is {describe(a, symbols)} in training mode but {describe(b, symbols)} in eval mode",
        span,
        hint="both sides of 'a if training else b' give tensors of the same shape and dtype, or equal build-time values",
    )


def conflict_error(scope: dict[str, Any], name: str, span: Span) -> EvaluationError | None:
    """The error for using a name the two modes give differently, if it is one."""
    found = scope.get(CONFLICT + name)
    if found is None:
        return None
    return EvaluationError(found.message, span, notes=found.notes, hint=found.hint)


def returned(
    parent: GraphBuilder, arms: list[Arm], nested: bool, span: Span, symbols: shapes.Symbols
) -> Val:
    """The value both arms return: the eval mode's when a top-level net returns differently
    in training (GoogLeNet's auxiliary outputs); a block applied inside another must
    return alike in both modes."""
    train, evaluation = (arm.value for arm in arms)
    if not agree(train, evaluation) and nested:
        raise StructureError(
            f"this block returns {describe(train, symbols)} in training mode but "
            f"{describe(evaluation, symbols)} in eval mode",
            span,
            hint="a block used inside another returns alike in both modes; only the net itself may differ",
        )
    node = branch_node(parent, arms, [train, evaluation])
    return Val(node, meta_arg(evaluation), span)


def not_returning(arms: list[Arm], span: Span) -> StructureError:
    mode = "training" if arms[0].builder.has_return else "eval"
    return StructureError(
        f"only the {mode} branch of 'if training:' returns",
        span,
        hint="end both branches with 'return', or neither",
    )
