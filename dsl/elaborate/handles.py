"""What is done with a module `Handle`: building it on its first application (the shapes it
is applied to decide its arguments), and finishing it into a resolved spec. A block's body
is elaborated by whoever implements `BlockMaker` (the elaborator), passed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

from dsl.elaborate import limits
from dsl.elaborate.context import Context
from dsl.elaborate.layer_types import constructor_argument
from dsl.elaborate.net_settings import overridden
from dsl.elaborate.values import Handle, Parts, Runner, kind_of, meta_signature
from dsl.errors import (
    ArgumentError,
    EvaluationError,
    Note,
    ShapeError,
    StructureError,
    did_you_mean,
)
from dsl.plan import ContainerSpec, LeafSpec, ModuleSpec, PartSpec
from dsl.source import Span
from dsl.torchlib import shapes

Sources = list[Span | None]


class BlockMaker(Protocol):
    """Elaborates a block's body for the inputs it is first applied to."""

    @property
    def context(self) -> Context: ...

    def instantiate_block(
        self, handle: Handle, inputs: list[Any], sources: Sources, span: Span
    ) -> tuple[ModuleSpec, Any]: ...


def call_meta(
    handle: Handle,
    inputs: list[Any],
    sources: Sources,
    span: Span,
    maker: BlockMaker,
    keywords: dict[str, Any] | None = None,
) -> Any:
    """The output meta for these input metas (and keyword metas, which only layers and parts
    take), building the module the first time."""
    if keywords:
        if handle.runner is None:
            _build(handle, inputs, sources, span, maker)
        assert handle.runner is not None
        return handle.runner(inputs, sources, span, keywords)
    if handle.runner is None:
        out = _build(handle, inputs, sources, span, maker)
        if handle.kind == "block":
            handle.first = ([meta_signature(m) for m in inputs], out, inputs, span)
        return out
    if handle.kind == "block" and handle.first is not None:
        if [meta_signature(m) for m in inputs] == handle.first[0]:
            return handle.first[1]
        raise _applied_to_another_shape(handle, inputs, span, maker.context.symbols)
    return handle.runner(inputs, sources, span)


def _applied_to_another_shape(
    handle: Handle, inputs: list[Any], span: Span, symbols: shapes.Symbols
) -> ShapeError:
    assert handle.first is not None
    _, _, first_inputs, first_span = handle.first
    described = lambda metas: ", ".join(shapes.describe(m, symbols) for m in metas)  # noqa: E731
    return ShapeError(
        f"block '{handle.name}' ({handle.title}) was built for inputs of shape {described(first_inputs)} "
        f"and is applied again to {described(inputs)}",
        span,
        notes=[Note(f"it was first applied here, to {described(first_inputs)}", first_span)],
        hint="a shared block must see the same input shapes each time; define a second block for the other shape",
    )


def _build(
    handle: Handle, inputs: list[Any], sources: Sources, span: Span, maker: BlockMaker
) -> Any:
    if handle.kind == "block":
        spec, out = maker.instantiate_block(handle, inputs, sources, span)
        handle.spec = spec
        handle.runner = lambda *_: out
        return out
    builders = {"layer": _layer_runner, "part": _part_runner, "container": _container_runner}
    handle.runner = builders[handle.kind](handle, inputs, sources, span, maker)
    return handle.runner(inputs, sources, span)


def _part_runner(
    handle: Handle, inputs: list[Any], sources: Sources, span: Span, maker: BlockMaker
) -> Runner:
    assert handle.source is not None
    module = handle.source.meta.get_submodule(handle.path)
    what = f"{handle.name} (part {handle.path})"
    symbols = maker.context.symbols

    def runner(metas: list[Any], srcs: Sources, at: Span, keywords: dict | None = None) -> Any:
        inputs = _tensor_inputs(metas, srcs)
        with shapes.fast_meta(module):
            return shapes.run(module, metas, keywords or {}, what, at, inputs, symbols)

    return runner


def _layer_runner(
    handle: Handle, inputs: list[Any], sources: Sources, span: Span, maker: BlockMaker
) -> Runner:
    assert handle.layer is not None
    context = maker.context
    first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
    bound = bind(handle, first, context)
    if first is not None:
        source = sources[0] if sources else None
        shapes.check_input_sizes(
            handle.layer, bound, first, handle.span, source, context.symbols, span
        )
    inferred = _inferred(handle, bound)
    bound = overridden(handle, bound)
    module, numel = context.meta_module(handle.layer, bound, handle.span)
    handle.spec = LeafSpec(handle.layer, bound, handle.span, numel, inferred)
    what = f"{handle.name} ({handle.layer.name})"
    outputs = context.outputs

    def runner(metas: list[Any], srcs: Sources, at: Span, keywords: dict | None = None) -> Any:
        keywords = keywords or {}
        key = (
            id(module),
            tuple(meta_signature(m) for m in metas),
            tuple((k, meta_signature(v)) for k, v in keywords.items()),
        )
        if key not in outputs:
            inputs = _tensor_inputs(metas, srcs)
            try:
                outputs[key] = shapes.run(
                    module, metas, keywords, what, at, inputs, context.symbols
                )
            except AttributeError:  # `attn(0.1, x, x)`: the forward read `0.1.dim()`
                raise plain_value_error(what, metas, keywords, at, str(handle.name)) from None
        return outputs[key]

    return runner


def plain_value_error(
    what: str, args: Sequence[Any], kwargs: dict[str, Any], span: Span, call: str
) -> ArgumentError:
    """torch reached for a tensor's method on a plain value the spec passed."""
    found = ", ".join([kind_of(a) for a in args] + [f"{k}={kind_of(v)}" for k, v in kwargs.items()])
    return ArgumentError(
        f"{what} expects tensors computed in forward where torch takes them, not ({found})",
        span,
        hint=f"pass the tensor first, e.g. {call}(x, ...)",
    )


def _tensor_inputs(metas: list[Any], srcs: Sources) -> list[tuple[Any, Span | None]]:
    """The tensors a module is applied to, with where each was made (`lstm(x, (h, c))`,
    `norm(x, None)`: only the tensors are described in errors)."""
    return [(m, s) for m, s in zip(metas, srcs) if isinstance(m, torch.Tensor)]


def _inferred(handle: Handle, bound: dict[str, Any]) -> tuple[str, ...]:
    """Which of `bound` were read from the input: the arguments the call left out
    (bind_layer_args fills the first required input-size parameters not written)."""
    assert handle.call is not None and handle.layer is not None
    call = handle.call
    count = len(bound) - len(call.args) - len(call.kwargs)
    if count <= 0:
        return ()
    return handle.layer.binding(tuple(call.kwargs), len(call.args)).inferred[:count]


def bind(handle: Handle, input_meta: torch.Tensor | None, context: Context) -> dict[str, Any]:
    """A layer's constructor arguments: those written, and those read from its input."""
    assert handle.layer is not None and handle.call is not None and handle.frame is not None
    extra = {}
    if input_meta is not None:
        for name in handle.layer.input_size_params:
            dim = shapes.INPUT_SIZE_PARAMS[name]
            if input_meta.dim() > (dim if dim >= 0 else -dim - 1):
                extra[name] = int(input_meta.shape[dim])
    frame = handle.frame.child_scope(extra) if extra else handle.frame
    args = [constructor_argument(frame.static(a), a.span) for a in handle.call.args]
    kwargs = {
        k: constructor_argument(frame.static(v), v.span) for k, v in handle.call.kwargs.items()
    }
    return shapes.bind_layer_args(
        handle.layer,
        args,
        kwargs,
        input_meta,
        handle.span,
        context.arg_spans(handle.call),
        handle.call.keyword_spans(),
    )


def _container_runner(
    handle: Handle, inputs: list[Any], sources: Sources, span: Span, maker: BlockMaker
) -> Runner:
    kind = handle.container_kind
    if kind != "Sequential":
        raise StructureError(
            f"a {kind} cannot be applied inside a Sequential: torch's {kind} has no forward",
            span,
            hint="apply it in a graph body (its run option decides how), or use a Sequential",
        )
    children = handle.children  # the runner is kept on the handle: it must not refer back to it

    def runner(metas: list[Any], srcs: Sources, at: Span) -> Any:
        out, src = metas, srcs
        for _, child in children:
            out = [call_meta(child, out, src, child.span, maker)]
            src = [child.span]
        return out[0]

    return runner


def finish(handle: Handle, context: Context) -> ModuleSpec:
    """The resolved spec; a module never applied is built without an input, if it can be."""
    if handle.kind == "container":
        children = [(n, finish(c, context)) for n, c in handle.children]
        return ContainerSpec(handle.container_kind, children, handle.span, handle.init_rules)
    if handle.kind == "part":
        assert handle.source is not None
        return PartSpec(handle.source.key, handle.path, handle.span)
    if handle.spec is None:
        if handle.kind == "block":
            raise StructureError(
                f"block '{handle.name}' ({handle.title}) is defined but never applied, so its input shapes are unknown",
                handle.span,
                hint="apply it to a value, or remove it",
            )
        assert handle.layer is not None
        bound = overridden(handle, bind(handle, None, context))
        module = shapes.construct_on_meta(handle.layer, bound, handle.span)
        handle.spec = LeafSpec(handle.layer, bound, handle.span, limits.module_numel(module))
    return handle.spec


def part_of(source: Parts, path: str, span: Span) -> Handle:
    """The submodule `path` of a parts(...) source, as a member-to-be."""
    try:
        source.meta.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in source.meta.named_modules() if n]
        raise EvaluationError(
            f"the source has no part '{path}'", span, hint=did_you_mean(path, names)
        ) from None
    handle = Handle("part", span)
    handle.source = source
    handle.path = path
    return handle
