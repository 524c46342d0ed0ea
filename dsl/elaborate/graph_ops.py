"""Operations that write graph nodes: calls of torch functions and tensor methods, reading
attributes, and applying modules (containers unrolled as their run option says)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

from dsl import ir
from dsl.elaborate import limits
from dsl.elaborate.children import Children
from dsl.elaborate.context import Context
from dsl.elaborate.graph import GraphBuilder
from dsl.elaborate.handles import BlockMaker, call_meta, finish, part_of, plain_value_error
from dsl.elaborate.values import (
    BlockRef,
    Builtin,
    FunctionRef,
    Handle,
    LayerRef,
    MethodRef,
    Parts,
    ShapeView,
    Val,
    kind_of,
    meta_arg,
    node_arg,
    to_static,
    vals_in,
)
from dsl.errors import (
    ArgumentError,
    EvaluationError,
    Note,
    ShapeError,
    StructureError,
    did_you_mean,
)
from dsl.plan import LeafSpec, ModuleSpec
from dsl.source import Span
from dsl.torchlib import catalog, shapes
from dsl.torchlib.registry import refusal_hint


def graph_call(
    symbols: shapes.Symbols,
    builder: GraphBuilder | None,
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    what: str,
    span: Span,
) -> Val:
    """`fn(*args, **kwargs)` on graph values: its output's meta, and a node in forward."""
    if builder is None:
        raise StructureError(f"{what} computes on tensors, which only a graph body can do", span)
    inputs = [(v.meta, v.span) for v in vals_in((args, kwargs))]  # bounded: refuses aliasing
    refuse_references((args, kwargs), what, span)
    metas = meta_arg(args), meta_arg(kwargs)
    if metas[0]:
        limits.check_pieces(getattr(fn, "__name__", ""), metas[0][0], metas[0][1:], metas[1], span)
    try:
        out = shapes.run(fn, metas[0], metas[1], what, span, inputs, symbols)
    except AttributeError:  # torch reached for a tensor's method on a plain value
        raise plain_value_error(what, args, kwargs, span, what) from None
    kwargs = _follow_input_dtype(builder, fn, kwargs, out, span)
    node = builder.node("call_function", fn, node_arg(args), node_arg(kwargs))
    if fn is operator.add and _shaped_as_first(args, out):
        node.meta[SHAPED_AS_FIRST] = True
    return Val(node, out, span)


def _follow_input_dtype(builder: GraphBuilder, fn: Any, kwargs: dict, out: Any, span: Span) -> dict:
    """A floating tensor made from sizes (`zeros(T, T)`, `linspace(...)`) without a dtype
    gets the first floating input's, read in forward, as a hand-written `dtype=x.dtype`
    does: after `model.half()` it is half too, not float32 promoting the result back."""
    if "dtype" in kwargs or not catalog.is_factory(fn) or not isinstance(out, torch.Tensor):
        return kwargs
    follows = out.dtype == torch.get_default_dtype() and not builder.made_at_build
    source = builder.floating_input() if follows else None
    if source is None:
        return kwargs
    return {**kwargs, "dtype": Val(builder.attribute(source, "dtype"), out.dtype, span)}


# On an `a + b` node whose result has a's shape and dtype: the code generator may then add
# in place (dsl.build.inplace), where it also knows who else reads `a`.
SHAPED_AS_FIRST = "dsl_shaped_as_first"


def _shaped_as_first(args: tuple, out: Any) -> bool:
    first = args[0].meta if isinstance(args[0], Val) else None
    return (
        isinstance(first, torch.Tensor)
        and isinstance(out, torch.Tensor)
        and first.shape == out.shape
        and first.dtype == out.dtype
    )


def method_call(
    symbols: shapes.Symbols,
    builder: GraphBuilder,
    ref: MethodRef,
    args: list,
    kwargs: dict,
    span: Span,
) -> Any:
    if ref.name == "size" and not kwargs and len(args) == 1:
        return shape_dim(symbols, ShapeView(ref.val, builder), to_static(args[0], span), span)
    meta_fn = getattr(ref.val.meta, ref.name)
    inputs = [(ref.val.meta, ref.val.span)] + [(v.meta, v.span) for v in vals_in((args, kwargs))]
    refuse_references((args, kwargs), f".{ref.name}()", span)
    limits.check_pieces(ref.name, ref.val.meta, meta_arg(tuple(args)), meta_arg(kwargs), span)
    out = shapes.run(
        meta_fn, meta_arg(tuple(args)), meta_arg(kwargs), f".{ref.name}()", span, inputs, symbols
    )
    node = builder.node(
        "call_method", ref.name, (ref.val.node, *node_arg(tuple(args))), node_arg(kwargs)
    )
    return Val(node, out, span)


# Named things forward cannot pass as values: a layer type, a function, and also a member
# (a module: `interpolate(x, align_corners=blocks)` would put the module in the code).
REFERENCES = (LayerRef, BlockRef, FunctionRef, Builtin, MethodRef, Handle, Parts)


def refuse_references(
    value: Any, what: str, span: Span, references: tuple[type, ...] = REFERENCES
) -> None:
    """A layer, block, function or member named as an argument is no value forward can pass."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, references):
            raise ArgumentError(
                f"{what} takes values, and {kind_of(item)} is not one",
                span,
                hint="call it to make a value, or write the value the argument needs",
            )
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def shape_dim(symbols: shapes.Symbols, shape: ShapeView, key: Any, span: Span) -> Any:
    """`x.shape[key]` or `x.size(key)`: a size (or sizes) of the value, checked against its
    dimensions."""
    dims = shape.dims()
    try:
        return dims[key]
    except (IndexError, TypeError, ValueError):
        where = f"0 to {len(dims) - 1}, or -{len(dims)} to -1" if dims else "none"
        described = shapes.describe(shape.val.meta, symbols)
        raise ShapeError(
            f"a shape of {len(dims)} dimension{'s' if len(dims) != 1 else ''} has no index {key!r}: "
            f"the value has shape {described} (indices {where})",
            span,
            notes=[Note("the value was produced here", shape.val.span)] if shape.val.span else [],
        ) from None


def attribute(
    context: Context, value: Any, attr: str, builder: GraphBuilder | None, span: Span
) -> Any:
    """`value.attr`: a tensor's shape or method, a part of a source, a layer's tensor."""
    if attr.startswith("_"):
        raise EvaluationError(f"'{attr}' cannot be read: names starting with '_' are private", span)
    if isinstance(value, Val) and not isinstance(value.meta, torch.Tensor):
        raise EvaluationError(
            f"'.{attr}' reads a tensor, and this value is {_several(value.meta)}",
            span,
            hint="take one first: a, b = x.chunk(2) or x.chunk(2)[0]",
        )
    if isinstance(value, Val):
        return _tensor_attribute(value, attr, builder, span)
    if isinstance(value, Parts):
        return part_of(value, attr, span)
    if isinstance(value, Handle) and value.kind == "part" and _is_submodule(value, attr):
        assert value.source is not None
        return part_of(value.source, f"{value.path}.{attr}", span)
    if isinstance(value, Handle):
        return _module_tensor(context, value, attr, builder, span)
    if isinstance(value, Children):
        return value.attribute(attr, span)
    if isinstance(value, ShapeView):
        raise EvaluationError(
            f"a shape has no attribute '{attr}'", span, hint="index it: x.shape[1]"
        )
    raise EvaluationError(f"{kind_of(value)} has no attribute '{attr}'", span)


def _several(meta: Any) -> str:
    if isinstance(meta, tuple | list):
        return f"a {type(meta).__name__} of {len(meta)} values"
    return f"a {type(meta).__name__}"


def _is_submodule(part: Handle, attr: str) -> bool:
    assert part.source is not None
    module = part.source.meta.get_submodule(part.path)
    return isinstance(getattr(module, attr, None), torch.nn.Module)


def _tensor_attribute(value: Val, attr: str, builder: GraphBuilder | None, span: Span) -> Any:
    if attr == "shape":
        assert builder is not None
        return ShapeView(value, builder)
    if attr == "ndim":
        return value.meta.ndim
    # dtype and device are read when forward runs: a built-in constant would survive
    # `model.half()` or `.to("cuda")` and silently convert back
    if attr in ("device", "dtype"):
        assert builder is not None
        return Val(builder.attribute(value.node, attr), getattr(value.meta, attr), span)
    if attr in ("T", "mT"):
        assert builder is not None
        node = builder.node("call_function", getattr, (value.node, attr))
        return Val(node, getattr(value.meta, attr), span)
    if catalog.is_tensor_method(attr):
        return MethodRef(value, attr)
    raise EvaluationError(
        f"tensors have no attribute '{attr}' here",
        span,
        hint=refusal_hint(attr)
        or did_you_mean(attr, sorted(catalog.tensor_methods() | {"shape", "T"})),
    )


def _module_tensor(
    context: Context, handle: Handle, attr: str, builder: GraphBuilder | None, span: Span
) -> Val:
    """`wte.weight`: a parameter of a child module, read in forward (tied weights)."""
    if handle.kind == "container" and any(n == attr for n, _ in handle.children):
        raise EvaluationError(f'index containers with brackets: {handle.name}["{attr}"]', span)
    if handle.spec is None and handle.kind == "layer":
        finish(handle, context)
    spec = handle.spec
    if not isinstance(spec, LeafSpec):
        raise EvaluationError(
            f"only a layer's own tensors can be read ({handle.name} is a {handle.title})", span
        )
    module = shapes.construct_on_meta(spec.layer, spec.kwargs, span)
    tensor = getattr(module, attr, None)
    if not isinstance(tensor, torch.Tensor):
        names = [n for n, _ in module.named_parameters(recurse=False)] + [
            n for n, _ in module.named_buffers(recurse=False)
        ]
        raise EvaluationError(
            f"{handle.name} ({spec.layer.name}) has no tensor '{attr}'",
            span,
            hint=did_you_mean(attr, names) or f"it has: {', '.join(names)}",
        )
    if builder is None:
        raise StructureError("a module's tensors are read in graph bodies only", span)
    node = builder.node("get_attr", f"{handle.name}.{attr}", ())
    return Val(node, torch.empty(tensor.shape, dtype=tensor.dtype, device="meta"), span)


def apply(
    maker: BlockMaker,
    builder: GraphBuilder | None,
    handle: Handle,
    args: list,
    kwargs: dict,
    span: Span,
) -> Any:
    """`name(x, ...)`: the module applied to graph values."""
    if builder is None:
        raise StructureError("modules are applied to values only in graph bodies", span)
    if handle.name is None:
        raise StructureError(
            f"this {handle.title} must be named before it is applied",
            span,
            hint="write 'y = name(x): Layer(...)', or 'name = Layer(...)' then 'name(x)'",
        )
    if kwargs or not all(isinstance(arg, Val) for arg in args):
        return _apply_with_values(maker, builder, handle, args, kwargs, span)
    if handle.kind == "container" and handle.container_kind != "Sequential":
        return _apply_collection(maker, builder, handle, args, span)
    out = call_meta(handle, [a.meta for a in args], [a.span for a in args], span, maker)
    node = builder.node("call_module", handle.name, tuple(a.node for a in args))
    return Val(node, out, span)


def _apply_with_values(
    maker: BlockMaker, builder: GraphBuilder, handle: Handle, args: list, kwargs: dict, span: Span
) -> Val:
    """A layer applied with keywords or values other than tensors, as torch's forward takes
    them: `attn(x, x, x, need_weights=false)`, `lstm(x, (h0, c0))`, `norm(x, None)`."""
    refuse_references((args, kwargs), f"{handle.name}(...)", span)
    if handle.kind not in ("layer", "part"):
        if kwargs:
            raise ArgumentError(
                "modules are applied to positional inputs only",
                span,
                hint="torch layers take keywords; a block or container takes its inputs in order",
            )
        found = next(kind_of(a) for a in args if not isinstance(a, Val))
        raise ArgumentError(f"{handle.name} is applied to {found}; modules take tensors", span)
    for value in (*args, *kwargs.values()):
        if not vals_in(value):
            to_static(value, span)  # a build-time value: refuses modules, functions, training
    metas = [meta_arg(a) for a in args]
    sources = [a.span if isinstance(a, Val) else None for a in args]
    out = call_meta(handle, metas, sources, span, maker, meta_arg(kwargs))
    assert handle.name is not None
    node = builder.node("call_module", handle.name, node_arg(tuple(args)), node_arg(kwargs))
    return Val(node, out, span)


def _apply_collection(
    maker: BlockMaker, builder: GraphBuilder, handle: Handle, args: list[Val], span: Span
) -> Any:
    """ModuleList/ModuleDict: unrolled in the generated forward, as their run option says."""
    kind = handle.container_kind
    run = handle.options.get("run", "chain" if kind == "ModuleList" else "parallel")
    if run == "chain":
        out = args
        for _, child in handle.children:
            out = [apply(maker, builder, child, out, {}, span)]
        return out[0]
    outs = {name: apply(maker, builder, child, args, {}, span) for name, child in handle.children}
    merge = handle.options.get("merge")
    if merge is None:
        return outs if kind == "ModuleDict" else tuple(outs.values())
    values = list(outs.values())
    symbols = maker.context.symbols
    if merge == "add":
        result = values[0]
        for value in values[1:]:
            result = graph_call(symbols, builder, operator.add, (result, value), {}, "add", span)
        return result
    fn = {"cat": torch.cat, "stack": torch.stack}[merge]
    dim = {"dim": handle.options.get("dim", 1)}
    return graph_call(symbols, builder, fn, (values,), dim, merge, span)


def _is_model(handle: Handle) -> bool:
    """A layer, or a net of the spec (not a block: a block's shapes come from its caller)."""
    if handle.kind == "block":
        return handle.block is not None and isinstance(handle.block.node, ir.NetDef)
    return handle.kind == "layer"


def parts(
    context: Context,
    args: list,
    kwargs: dict,
    span: Span,
    net_parts: Callable[[Handle], ModuleSpec],
) -> Parts:
    """`parts(torchvision.models.resnet18())` or `parts(ResNet(...))` (a net of the spec's):
    a model whose submodules become members."""
    handle = args[0] if len(args) == 1 and not kwargs else None
    if not isinstance(handle, Handle) or handle.name is not None or not _is_model(handle):
        raise ArgumentError(
            "parts() takes one new layer or net, e.g. parts(torchvision.models.resnet18())",
            span,
        )
    if handle.kind == "block":
        spec: ModuleSpec = net_parts(handle)
        meta = context.meta_model(spec)
    else:
        spec = finish(handle, context)
        assert isinstance(spec, LeafSpec)
        meta = shapes.construct_on_meta(spec.layer, spec.kwargs, span)
    context.sources += 1
    return Parts(f"source{context.sources}", spec, meta, span)
