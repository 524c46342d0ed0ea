"""Derived nets: a net that *is* another net or a torchvision model, changed by name.

    net ResNet50(num_classes=1000) = ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)

    net FineTune = torchvision.models.resnet18():
        input x: [B, 3, 224, 224]
        freeze("*")                       # every parameter so far stops requiring grad
        fc = Linear(100)                  # replaced (in_features read from what fc received)
        set("layer3.*.conv2", dilation=(2, 2), padding=(2, 2))

The base is built first, then the body's statements apply in order, exactly as a person
would write `model = resnet18(); model.fc = nn.Linear(512, 100)`, so keys, construction
order and initial weights match that code. Shapes are followed on a meta copy of the model.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn

from dsl import ir
from dsl.elaborate.evaluate import Frame
from dsl.elaborate.resolve import Elaborator, GraphBody, is_weights_call, resolve_net_in
from dsl.elaborate.values import BlockRef, GraphBuilder, Handle, LayerRef
from dsl.errors import ArgumentError, DSLError, StructureError, UnknownKeywordError, did_you_mean
from dsl.plan import DerivedSpec, FreezeOp, ModuleSpec, ReplaceOp, Resolved, SetOp
from dsl.source import Span
from dsl.syntax.loader import Unit
from dsl.torchlib import init, shapes

SURGERY_CALLS = ("freeze", "unfreeze", "set")


def resolve_derived(
    elab: Elaborator, unit: Unit, node: ir.NetDef | ir.BlockDef, scope: dict[str, Any]
) -> Resolved:
    frame = Frame(elab, unit, None, scope)
    base_spec, inputs, output = _base(elab, frame, node)
    if not node.body and output is not None:
        return Resolved(
            node.name, DerivedSpec(base_spec, [], node.span), inputs, output, elab.symbols
        )
    surgeon = _Surgeon(elab, frame, node, base_spec, inputs)
    for stmt in node.body:
        elab.step(stmt.span)
        try:
            surgeon.statement(stmt)
        except DSLError as exc:
            raise exc.with_span(stmt.span) from None
    output = surgeon.run(node.span)
    spec = DerivedSpec(base_spec, surgeon.ops, node.span, surgeon.init_rules)
    return Resolved(node.name, spec, inputs, output, elab.symbols)


def _base(
    elab: Elaborator, frame: Frame, node: ir.NetDef | ir.BlockDef
) -> tuple[ModuleSpec, list[tuple[str, torch.Tensor]], Any]:
    """The base module's spec, the inputs the derived net takes, and the base's output
    when it is already known (a net base)."""
    base = node.base
    if not isinstance(base, ir.Call):
        raise StructureError(
            "a derived net names its base as a call, e.g. '= torchvision.models.resnet18()'",
            base.span,
        )
    func = frame.eval(base.func)
    declared = [s for s in node.body if isinstance(s, ir.Input)]
    if isinstance(func, BlockRef) and isinstance(func.definition.node, ir.NetDef):
        if declared:
            raise StructureError(
                f"'{func.definition.node.name}' declares the inputs; a net derived from it takes the same",
                declared[0].span,
            )
        base_scope = elab.bind_params(func.definition.node, base, frame, func.definition.unit)
        resolved = resolve_net_in(elab, func.definition.unit, func.definition.node, base_scope)
        return resolved.root, resolved.inputs, resolved.output
    if not isinstance(func, LayerRef):
        raise StructureError(
            "a derived net's base is a net or a layer such as torchvision.models.resnet50",
            base.span,
            hint="to reuse a block, apply it in a graph body instead",
        )
    if not declared:
        raise StructureError(
            f"'{node.name}' needs its inputs declared, e.g. 'input x: [B, 3, 224, 224]'", node.span
        )
    body = GraphBody(elab, GraphBuilder(node.name, node.span), frame)
    inputs = [(stmt.input, body._declared_meta(stmt)) for stmt in declared]
    handle = frame.eval(base)
    handle.attach(node.name)
    return handle.finish(elab), inputs, None


class _Surgeon:
    """Applies the body's statements to a meta copy of the model, recording each change."""

    def __init__(
        self,
        elab: Elaborator,
        frame: Frame,
        node: ir.NetDef | ir.BlockDef,
        base: ModuleSpec,
        inputs: list[tuple[str, torch.Tensor]],
    ) -> None:
        from dsl.build.compile import build_on_meta  # the meta copy is made as the real one will be

        self.elab = elab
        self.frame = frame
        self.node = node
        self.inputs = inputs
        self.model = build_on_meta(base)
        self.ops: list[ReplaceOp | FreezeOp | SetOp] = []
        self._rules = GraphBody(elab, GraphBuilder(node.name, node.span), frame)

    @property
    def init_rules(self) -> list[init.Rule]:
        return self._rules.builder.init_rules

    def statement(self, stmt: Any) -> None:
        if isinstance(stmt, ir.Input):
            return
        if isinstance(stmt, ir.Let) and len(stmt.let) == 1 and stmt.define is None:
            self._replace(self.elab.expand_name(stmt.let[0], self.frame, stmt.span), stmt)
        elif (
            isinstance(stmt, ir.Layer)
            and isinstance(stmt.layer, ir.Call)
            and isinstance(stmt.layer.func, ir.Name)
            and stmt.layer.func.id in SURGERY_CALLS
        ):
            self._call(stmt.layer)
        elif isinstance(stmt, ir.InitBlock):
            self._rules._InitBlock(stmt)
        elif isinstance(stmt, ir.Layer) and is_weights_call(stmt.layer):
            self.elab.add_weights(stmt.layer, self.frame)
        else:
            raise StructureError(
                "a derived net's body replaces members ('fc = Linear(10)'), or calls freeze(), unfreeze() or set()",
                stmt.span,
            )

    # -- replacing a member
    def _replace(self, path: str, stmt: ir.Let) -> None:
        current = self._submodule(path, stmt.span)
        received = self._inputs_of(current, path, stmt.span)
        handle = self.frame.eval(stmt.value)
        if not isinstance(handle, Handle) or handle.name is not None:
            raise StructureError(
                f"'{path}' is replaced by a new layer, e.g. '{path} = Linear(10)'", stmt.value.span
            )
        handle.attach(path)
        handle.call_meta(received, [stmt.span] * len(received), stmt.span, self.elab)
        spec = handle.finish(self.elab)
        from dsl.build.compile import build_on_meta

        parent, _, leaf = path.rpartition(".")
        setattr(self.model.get_submodule(parent), leaf, build_on_meta(spec))
        self.ops.append(ReplaceOp(path, spec, stmt.span))

    def _submodule(self, path: str, span: Span) -> nn.Module:
        try:
            return self.model.get_submodule(path)
        except AttributeError:
            names = [n for n, _ in self.model.named_modules() if n]
            raise StructureError(
                f"the base has no member '{path}' to replace", span, hint=did_you_mean(path, names)
            ) from None

    def _inputs_of(self, module: nn.Module, path: str, span: Span) -> list[Any]:
        """What `module` receives in the model's forward (run on meta)."""
        seen: list[tuple] = []
        handle = module.register_forward_pre_hook(
            lambda _m, args: seen.append(args) if not seen else None
        )
        try:
            self.run(span)
        finally:
            handle.remove()
        if not seen:
            raise StructureError(
                f"'{path}' is never applied by the base's forward, so what it receives is unknown",
                span,
            )
        return [a for a in seen[0] if isinstance(a, torch.Tensor)]

    # -- freeze / unfreeze / set
    def _call(self, call: ir.Call) -> None:
        name = call.func.id
        args = [self.frame.static(a) for a in call.args]
        kwargs = {k: self.frame.static(v) for k, v in call.kwargs.items()}
        if len(args) != 1 or not isinstance(args[0], str):
            raise ArgumentError(
                f'{name}() takes one name pattern first, e.g. {name}("layer1.*")', call.span
            )
        pattern = args[0]
        if name == "set":
            self._set(pattern, kwargs, call.span)
            return
        if kwargs:
            raise UnknownKeywordError(f"{name}() takes only a name pattern", call.span)
        names = [n for n, _ in self.model.named_parameters()]
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ArgumentError(
                f'{name}("{pattern}") matches no parameter',
                call.span,
                hint=did_you_mean(pattern, names),
            )
        self.ops.append(FreezeOp(pattern, name == "unfreeze", call.span))

    def _set(self, pattern: str, attrs: dict[str, Any], span: Span) -> None:
        matched = [
            (n, m) for n, m in self.model.named_modules() if n and fnmatch.fnmatchcase(n, pattern)
        ]
        if not matched:
            names = [n for n, _ in self.model.named_modules() if n]
            raise ArgumentError(
                f'set("{pattern}") matches no module', span, hint=did_you_mean(pattern, names)
            )
        for path, module in matched:
            for key, value in attrs.items():
                if (
                    key.startswith("_")
                    or not hasattr(module, key)
                    or isinstance(getattr(module, key), nn.Module | torch.Tensor)
                ):
                    raise UnknownKeywordError(
                        f"{path} ({type(module).__name__}) has no setting '{key}'", span
                    )
                setattr(module, key, value)
        self.ops.append(SetOp(pattern, attrs, span))

    def run(self, span: Span) -> Any:
        metas = [meta for _, meta in self.inputs]
        what = f"{self.node.name} after its changes"
        with shapes.fast_meta(self.model):
            return shapes.run(
                self.model, metas, {}, what, span, [(m, None) for m in metas], self.elab.symbols
            )
