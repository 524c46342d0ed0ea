"""`Elaborator`: the level that runs bodies of statements. It implements the callbacks the
evaluator and the handles use (`dsl.elaborate.evaluate.Elaboration`): a container's body,
a block's body for the inputs it is first applied to, a net of its own for a derived net."""

from __future__ import annotations

from typing import Any

from dsl import ir
from dsl.elaborate import container_forward, limits, net_settings, reuse
from dsl.elaborate.bodies import container_handle
from dsl.elaborate.container_forward import split_forward
from dsl.elaborate.context import Context
from dsl.elaborate.declarations import declared_meta
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.functions import call_function
from dsl.elaborate.graph import GraphBuilder
from dsl.elaborate.graph_body import GraphBody
from dsl.elaborate.handles import Sources, call_meta, finish
from dsl.elaborate.net_settings import Inbox
from dsl.elaborate.params import bind_params
from dsl.elaborate.surgery import resolve_derived
from dsl.elaborate.values import Handle, frozen_key, meta_arg, meta_signature
from dsl.errors import RecursionError_, StructureError
from dsl.plan import ModuleSpec, Resolved
from dsl.source import Span
from dsl.syntax.loader import Definition, Unit
from dsl.torchlib import shapes

MAX_BLOCK_DEPTH = 48


class Elaborator:
    def __init__(self, context: Context) -> None:
        self.context = context
        self._blocks: dict[tuple, tuple[ModuleSpec, Any]] = {}

    def container_handle(self, node: ir.Container, frame: Frame) -> Handle:
        return container_handle(node, frame)

    def call_function(self, definition: Definition, call: ir.Call, frame: Frame) -> Any:
        return call_function(self, definition, call, frame)

    def instantiate_block(
        self, handle: Handle, inputs: list[Any], sources: Sources, span: Span
    ) -> tuple[ModuleSpec, Any]:
        assert handle.block is not None
        definition = handle.block
        node = definition.node
        stack = self.context.stack
        self.context.budget.spend(limits.BLOCK_COST, handle.span, f"block {node.name}")
        self._check_depth(node.name, handle.span)
        stack.append((node.name, handle.span))
        try:
            caller = handle.frame
            assert isinstance(caller, Frame)
            scope = bind_params(self, node, handle.call, caller, definition.unit)
            # A block's elaboration depends only on its parameters and input shapes, so
            # identical instances (a ResNet stage's blocks, a GPT's layers) share one result.
            key = (
                id(node),
                frozen_key(scope),
                tuple(meta_signature(m) for m in inputs),
                net_settings.key_of(handle),
            )
            if key not in self._blocks:
                self._blocks[key] = reuse.block(
                    self.context,
                    definition,
                    (*key[1:], len(stack), handle.name),
                    (scope, handle.settings),
                    lambda: self._elaborate_block(definition, handle, scope, inputs, sources, span),
                )
            else:
                self.context.budget.spend_on_copy(self._blocks[key][0], handle.span, node.name)
            return self._blocks[key]
        finally:
            stack.pop()

    def _check_depth(self, name: str, span: Span) -> None:
        stack = self.context.stack
        if len(stack) >= MAX_BLOCK_DEPTH or (
            any(entry == name for entry, _ in stack[-MAX_BLOCK_DEPTH:])
            and len(stack) > MAX_BLOCK_DEPTH // 2
        ):
            chain = " -> ".join(entry for entry, _ in stack[-6:])
            raise RecursionError_(
                f"block '{name}' nests without end ({chain} -> {name})",
                span,
                hint=f"a block may contain itself only under an 'if' that stops it; blocks nest at most {MAX_BLOCK_DEPTH} deep",
            )

    def _elaborate_block(
        self,
        definition: Definition,
        handle: Handle,
        scope: dict[str, Any],
        inputs: list[Any],
        sources: Sources,
        span: Span,
    ) -> tuple[ModuleSpec, Any]:
        node = definition.node
        if node.base is not None:
            return self._derived_layer(definition, scope, inputs, sources, span)
        frame = Frame(self, definition.unit, None, scope)
        if isinstance(node.body, ir.Container):
            if handle.settings:
                raise StructureError(
                    f"set() reaches into a block with a graph body; {node.name} is a container",
                    handle.settings[0][2],
                    hint="set the layer in the container block itself",
                )
            children, forward = split_forward(node.body)
            if forward is not None:
                spec, out, _ = container_forward.elaborate(
                    frame, node.name, children, forward, inputs, sources, span
                )
                return spec, out
            inner = container_handle(_block_container(children), frame)
            assert handle.name is not None
            inner.attach(handle.name)
            out = call_meta(inner, inputs, sources, span, self)
            return finish(inner, self.context), out
        builder = GraphBuilder(node.name, node.span)
        frame.builder = builder
        GraphBody(builder, frame, Inbox(handle.settings)).run_block(node, inputs, sources, span)
        return builder.finish(self.context), meta_arg(builder.returned)

    def _derived_layer(
        self,
        definition: Definition,
        scope: dict[str, Any],
        inputs: list[Any],
        sources: Sources,
        span: Span,
    ) -> tuple[ModuleSpec, Any]:
        """A derived net (`net R = ResNet(...)`) applied as a layer: resolved as a net of its
        own, then its output followed on a meta copy of it for the inputs it is given."""
        node = definition.node
        assert isinstance(node, ir.NetDef | ir.BlockDef)  # a def has no base
        resolved = resolve_derived(self, definition.unit, node, scope)
        module = self.context.meta_model(resolved.root)
        symbols = self.context.symbols
        what = f"{node.name}(...)"
        with shapes.fast_meta(module):
            out = shapes.run(module, inputs, {}, what, span, list(zip(inputs, sources)), symbols)
        return resolved.root, out

    def net_parts(self, handle: Handle) -> ModuleSpec:
        """`parts(SomeNet(...))`: the net, its arguments bound, resolved as a model of its own."""
        definition = handle.block
        assert definition is not None and isinstance(handle.frame, Frame)
        node = definition.node
        assert isinstance(node, ir.NetDef)  # graph_ops.parts took nets only
        scope = bind_params(self, node, handle.call, handle.frame, definition.unit)
        return self.resolve_net(definition.unit, node, scope).root

    def resolve_net(
        self, unit: Unit, node: ir.NetDef | ir.BlockDef, scope: dict[str, Any]
    ) -> Resolved:
        """Elaborate a net whose parameters are bound in `scope`."""
        if node.base is not None:
            return resolve_derived(self, unit, node, scope)
        frame = Frame(self, unit, None, scope)
        if isinstance(node.body, ir.Container):
            return self._resolve_container_net(frame, node, node.body)
        builder = GraphBuilder(node.name, node.span)
        frame.builder = builder
        body = GraphBody(builder, frame)
        body.run_block(node, None, [], node.span)
        spec = builder.finish(self.context)
        inputs = [(n, v.meta) for n, v in body.inputs]
        return Resolved(node.name, spec, inputs, meta_arg(builder.returned), self.context.symbols)

    def _resolve_container_net(
        self, frame: Frame, node: ir.NetDef | ir.BlockDef, container: ir.Container
    ) -> Resolved:
        """`net MLP = Sequential:` — inputs are declared first in the body, then the children
        (or in its `forward:`, after them)."""
        children, forward = split_forward(container)
        if forward is not None:
            spec, out, declared = container_forward.elaborate(
                frame, node.name, children, forward, None, [], node.span
            )
            return Resolved(node.name, spec, declared, out, self.context.symbols)
        inputs = [s for s in container.body if isinstance(s, ir.Input)]
        if len(inputs) != 1:
            raise StructureError(
                f"a {container.kind} net declares one input first in its body",
                node.span,
                hint="write e.g. 'input x: [N, 784]' as its first line",
            )
        meta = declared_meta(frame, inputs[0])
        handle = container_handle(_without_inputs(container), frame)
        handle.attach(node.name)
        out = call_meta(handle, [meta], [inputs[0].span], node.span, self)
        root = finish(handle, self.context)
        return Resolved(node.name, root, [(inputs[0].input, meta)], out, self.context.symbols)


def _without_inputs(container: ir.Container) -> ir.Container:
    return container.replace(body=[s for s in container.body if not isinstance(s, ir.Input)])


def _block_container(container: ir.Container) -> ir.Container:
    """`block X = Sequential:` may name its one input first (`input x`): its shape comes
    from the caller, as a graph block's does."""
    inputs = [s for s in container.body if isinstance(s, ir.Input)]
    if not inputs:
        return container
    if len(inputs) > 1 or any(s.shape is not None for s in inputs):
        raise StructureError(
            f"a {container.kind} block takes one input, its shape from the caller",
            inputs[-1].span,
            hint="write 'input x' first in its body, without a shape",
        )
    return _without_inputs(container)
