"""Declarations in a body that need no graph: declared input shapes and dtypes, `param` and
`buffer` tensors, `init:` rules and `weights(...)` statements."""

from __future__ import annotations

from typing import Any, TypeGuard

import torch

from dsl import ir
from dsl.elaborate import limits
from dsl.elaborate.computed import computed_buffer
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.values import kind_of
from dsl.errors import (
    ArgumentError,
    InitError,
    StructureError,
    UnknownKeywordError,
    did_you_mean,
)
from dsl.plan import TensorSpec, WeightsSpec
from dsl.source import Span
from dsl.torchlib import init, shapes
from dsl.torchlib.init import InitCall


def declared_meta(frame: Frame, stmt: ir.Input) -> torch.Tensor:
    """The meta tensor an `input x: [B, 3, H, W]` declares (names are symbolic sizes)."""
    if stmt.shape is None:
        raise StructureError(
            f"the net's input '{stmt.input}' needs a shape",
            stmt.span,
            hint=f"write e.g. 'input {stmt.input}: [B, 3, H, W]' (names are symbolic sizes)",
        )
    dims = [size_of(frame, d, i) for i, d in enumerate(stmt.shape)]
    limits.check_dims(dims, stmt.span, f"input '{stmt.input}'")
    return shapes.meta_tensor(dims, dtype_of(stmt.dtype, stmt.span))


def size_of(frame: Frame, expr: ir.ExprNode, position: int) -> int:
    """A declared input size: a name defined nowhere is a symbolic size."""
    if (
        isinstance(expr, ir.Name)
        and expr.id not in frame.scope
        and frame.context.lookup(expr.id, frame.unit) is None
    ):
        return frame.context.symbols.size(expr.id, position)
    return _static_size(frame, expr)


def _static_size(frame: Frame, expr: ir.ExprNode) -> int:
    value = frame.static(expr)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        shown = repr(value) if isinstance(value, int | float | str | None) else kind_of(value)
        raise ArgumentError(f"a size must be a non-negative integer, not {shown}", expr.span)
    return value


def dtype_of(name: str | None, span: Span) -> torch.dtype:
    if name is None:
        return torch.float32
    if name not in shapes.DTYPES:
        raise ArgumentError(
            f"unknown dtype '{name}'",
            span,
            hint=did_you_mean(name, shapes.DTYPES) or f"dtypes: {', '.join(shapes.DTYPES)}",
        )
    return shapes.DTYPES[name]


_TENSOR_OPTIONS = {"param": {"requires_grad"}, "buffer": {"persistent"}}


def tensor_member(frame: Frame, stmt: ir.TensorDecl, kind: str, name: str) -> TensorSpec:
    """`param w: [n, m] = normal(0, 0.01)` / `buffer mean: [n] = zeros()`."""
    options = {k: frame.static(v) for k, v in stmt.options.items()}
    allowed = _TENSOR_OPTIONS[kind]
    for key in options:
        if key not in allowed:
            raise UnknownKeywordError(
                f"a {kind} has no option '{key}'",
                stmt.options[key].span,
                hint=f"its options are: {', '.join(sorted(allowed))}",
            )
    if stmt.shape is None and kind == "buffer":
        return computed_buffer(frame, stmt, name, bool(options.get("persistent", True)))
    if stmt.shape is None:
        raise StructureError(
            f"param '{name}' needs a shape",
            stmt.span,
            hint=f"write 'param {name}: [n] = normal(0, 0.01)'; only a buffer's value may be computed ('buffer {name} = arange(n)')",
        )
    shape = tuple(_static_size(frame, d) for d in stmt.shape)
    limits.check_dims(list(shape), stmt.span, f"{kind} '{name}'")
    dtype = dtype_of(stmt.dtype, stmt.span)
    initialiser = _tensor_init(frame, stmt.init) if stmt.init is not None else None
    if initialiser is None and kind == "param":
        raise InitError(
            f"param '{name}' needs an initialiser",
            stmt.span,
            hint="write e.g. '= normal(0, 0.01)', '= zeros()' or '= kaiming_uniform(a=5 ** 0.5)'",
        )
    if initialiser is not None:
        initialiser.check(shape, dtype)  # what building it would refuse, found by validate
    persistent = bool(options.get("persistent", True))
    requires_grad = bool(options.get("requires_grad", True))
    return TensorSpec(kind, shape, dtype, initialiser, persistent, requires_grad, stmt.span)


def _init_call(frame: Frame, expr: ir.ExprNode) -> tuple[str, tuple, dict]:
    if not (isinstance(expr, ir.Call) and isinstance(expr.func, ir.Name)):
        raise InitError("an initialiser is a call such as normal(0, 0.01)", expr.span)
    args = tuple(frame.static(a) for a in expr.args)
    kwargs = {k: frame.static(v) for k, v in expr.kwargs.items()}
    return expr.func.id, args, kwargs


def _tensor_init(frame: Frame, expr: ir.ExprNode) -> InitCall:
    name, args, kwargs = _init_call(frame, expr)
    init.check_initialiser(name, expr.span)
    return InitCall(name, args, kwargs, expr.span)


def init_rules_of(frame: Frame, stmt: ir.InitBlock) -> list[init.Rule]:
    rules: list[init.Rule] = []
    for rule in stmt.init:
        name, args, kwargs = _init_call(frame, rule.init)
        rules.extend(init.rule_from(rule.match, name, args, kwargs, rule.span))
    return rules


def is_weights_call(expr: Any) -> TypeGuard[ir.Call]:
    return (
        isinstance(expr, ir.Call) and isinstance(expr.func, ir.Name) and expr.func.id == "weights"
    )


_WEIGHTS_OPTIONS = {"prefix", "rename", "strict", "allow_missing", "allow_mismatch"}


def add_weights(frame: Frame, call: ir.Call) -> None:
    """`weights("file.pt", prefix=..., rename=..., strict=..., allow_missing=[...])`."""
    context = frame.context
    if context.stack:
        raise StructureError("weights() belongs to the net being built, not to a block", call.span)
    args = [frame.static(a) for a in call.args]
    options = {k: frame.static(v) for k, v in call.kwargs.items()}
    for key in options:
        if key not in _WEIGHTS_OPTIONS:
            raise UnknownKeywordError(
                f"weights() has no option '{key}'",
                call.keyword_spans()[key],
                hint=did_you_mean(key, _WEIGHTS_OPTIONS)
                or f"options: {', '.join(sorted(_WEIGHTS_OPTIONS))}",
            )
    if len(args) != 1 or not isinstance(args[0], str):
        raise ArgumentError(
            'weights() takes a file path first, e.g. weights("resnet18.pth")', call.span
        )
    root = context.library.root
    path = ((frame.unit.path.parent if frame.unit.path else root) / args[0]).resolve()
    if not path.is_relative_to(root):
        raise ArgumentError(
            f"'{args[0]}' lies outside the spec's directory",
            call.args[0].span,
            hint="weights files are read from under the spec's own directory",
        )
    context.weights.append(WeightsSpec(path, options, call.span))
