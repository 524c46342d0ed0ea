"""Derived nets: a net that *is* another net or a torchvision model, changed by name.

    net ResNet50(num_classes=1000) = ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)

    net FineTune = torchvision.models.resnet18():
        input x: [B, 3, 224, 224]
        freeze("*")                       # every parameter so far stops requiring grad
        fc = Linear(100)                  # replaced (in_features read from what fc received)
        set("layer3.*.conv2", dilation=(2, 2), padding=(2, 2))

The base is built first, then the body's statements apply in order, exactly as a person
would write `model = resnet18(); model.fc = nn.Linear(512, 100)`, so keys, construction
order and initial weights match that code. Shapes are followed on a meta copy of the model,
built by the `meta_build` the build layer passed in (`Context.meta_build`).
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Any, Protocol

import torch
from torch import nn

from dsl import ir
from dsl.elaborate import limits
from dsl.elaborate.context import MetaBuild
from dsl.elaborate.declarations import add_weights, declared_meta, init_rules_of, is_weights_call
from dsl.elaborate.evaluate import Elaboration, Frame
from dsl.elaborate.handles import call_meta, finish
from dsl.elaborate.params import bind_params
from dsl.elaborate.values import BlockRef, Handle, LayerRef
from dsl.errors import ArgumentError, DSLError, StructureError, UnknownKeywordError, did_you_mean
from dsl.plan import DerivedSpec, FreezeOp, ModuleSpec, ReplaceOp, Resolved, SetOp
from dsl.source import Span
from dsl.syntax.loader import Unit
from dsl.torchlib import init, shapes

SURGERY_CALLS = ("freeze", "unfreeze", "set")
Inputs = list[tuple[str, torch.Tensor]]


class NetElaboration(Elaboration, Protocol):
    """A net base is elaborated as a net of its own, a level above surgery."""

    def resolve_net(
        self, unit: Unit, node: ir.NetDef | ir.BlockDef, scope: dict[str, Any]
    ) -> Resolved: ...


def resolve_derived(
    elab: NetElaboration, unit: Unit, node: ir.NetDef | ir.BlockDef, scope: dict[str, Any]
) -> Resolved:
    frame = Frame(elab, unit, None, scope)
    base_spec, inputs, output = _base(elab, frame, node)
    symbols = elab.context.symbols
    if not node.body and output is not None:
        return Resolved(node.name, DerivedSpec(base_spec, [], node.span), inputs, output, symbols)
    surgeon = _Surgeon(frame, node, base_spec, inputs)
    for stmt in _statements(node):
        elab.context.step(stmt.span)
        try:
            surgeon.statement(stmt)
        except DSLError as exc:
            raise exc.with_span(stmt.span) from None
    output = surgeon.run(node.span)
    spec = DerivedSpec(base_spec, surgeon.ops, node.span, surgeon.init_rules)
    elab.context.keep_meta_model(spec, surgeon.model)
    return Resolved(node.name, spec, inputs, output, symbols)


def _statements(node: ir.NetDef | ir.BlockDef) -> list[ir.Stmt]:
    return node.body.body if isinstance(node.body, ir.Container) else node.body


def _base(
    elab: NetElaboration, frame: Frame, node: ir.NetDef | ir.BlockDef
) -> tuple[ModuleSpec, Inputs, Any]:
    """The base module's spec, the inputs the derived net takes, and the base's output
    when it is already known (a net base)."""
    base = node.base
    if not isinstance(base, ir.Call):
        raise StructureError(
            "a derived net names its base as a call, e.g. '= torchvision.models.resnet18()'",
            node.span if base is None else base.span,
        )
    func = frame.eval(base.func)
    declared = [s for s in _statements(node) if isinstance(s, ir.Input)]
    if isinstance(func, BlockRef) and isinstance(func.definition.node, ir.NetDef):
        if declared:
            raise StructureError(
                f"'{func.definition.node.name}' declares the inputs; a net derived from it takes the same",
                declared[0].span,
            )
        definition = func.definition
        base_scope = bind_params(elab, definition.node, base, frame, definition.unit)
        assert not isinstance(definition.node, ir.FuncDef)  # a net, checked above
        resolved = elab.resolve_net(definition.unit, definition.node, base_scope)
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
    inputs = [(stmt.input, declared_meta(frame, stmt)) for stmt in declared]
    handle = frame.eval(base)
    handle.attach(node.name)
    return finish(handle, elab.context), inputs, None


def _meta_build(frame: Frame) -> MetaBuild:
    meta_build = frame.context.meta_build
    if meta_build is None:
        raise TypeError("a derived net is resolved with resolve(..., meta_build=build_on_meta)")
    return meta_build


class _Surgeon:
    """Applies the body's statements to a meta copy of the model, recording each change."""

    def __init__(
        self, frame: Frame, node: ir.NetDef | ir.BlockDef, base: ModuleSpec, inputs: Inputs
    ) -> None:
        self.frame = frame
        self.node = node
        self.inputs = inputs
        self.meta_build = _meta_build(frame)
        self.model = self.meta_build(base)  # the meta copy is made as the real one will be
        self.ops: list[ReplaceOp | FreezeOp | SetOp] = []
        self.init_rules: list[init.Rule] = []

    def statement(self, stmt: Any) -> None:
        if isinstance(stmt, ir.Input):
            return
        if isinstance(stmt, ir.Let) and len(stmt.let) == 1 and stmt.define is None and not stmt.op:
            path = self.frame.context.expand_name(stmt.let[0], self.frame, stmt.span)
            self._replace(path, stmt)
        elif (
            isinstance(stmt, ir.Layer)
            and isinstance(stmt.layer, ir.Call)
            and isinstance(stmt.layer.func, ir.Name)
            and stmt.layer.func.id in SURGERY_CALLS
        ):
            self._call(stmt.layer, stmt.layer.func.id)
        elif isinstance(stmt, ir.InitBlock):
            self.init_rules.extend(init_rules_of(self.frame, stmt))
        elif isinstance(stmt, ir.Layer) and is_weights_call(stmt.layer):
            add_weights(self.frame, stmt.layer)
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
        call_meta(handle, received, [stmt.span] * len(received), stmt.span, self.frame.elab)
        spec = finish(handle, self.frame.context)
        parent, _, leaf = path.rpartition(".")
        setattr(self.model.get_submodule(parent), leaf, self.meta_build(spec))
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
    def _call(self, call: ir.Call, name: str) -> None:
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
                if not _settable(module, key):
                    raise UnknownKeywordError(
                        f"{path} ({type(module).__name__}) has no setting '{key}'", span
                    )
                setattr(module, key, value)
        self.ops.append(SetOp(pattern, attrs, span))

    def run(self, span: Span) -> Any:
        metas = [meta for _, meta in self.inputs]
        what = f"{self.node.name} after its changes"
        symbols = self.frame.context.symbols
        modules = sum(1 for _ in self.model.modules())
        self.frame.context.budget.spend(
            modules * limits.META_RUN_COST, span, f"following shapes through {self.node.name}"
        )
        with shapes.fast_meta(self.model):
            return shapes.run(
                self.model, metas, {}, what, span, [(m, None) for m in metas], symbols
            )


_MODULE_ATTRIBUTES = frozenset(dir(nn.Module)) | {"training"}


def _settable(module: nn.Module, key: str) -> bool:
    """`set()` changes what the module's constructor took (Conv2d's `dilation`), never its
    methods, its nn.Module machinery (`training`, `state_dict`) or its tensors and children."""
    if key.startswith("_") or key in _MODULE_ATTRIBUTES or key not in vars(module):
        return False
    if isinstance(vars(module)[key], nn.Module | torch.Tensor):
        return False
    try:
        taken = inspect.signature(type(module).__init__).parameters
    except (TypeError, ValueError):
        return True
    return key in taken or any(p.kind is p.VAR_KEYWORD for p in taken.values())
