"""The module tree -> IR, one module at a time: a leaf is its constructor call, a plain
container is a `Sequential:`/`ModuleList:`/`ModuleDict:` with its children, and any other
module is an instance of its class's block (a placeholder call `§n()` until `blocks`
has compared every instance of the class)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.fx as fx
from torch import nn

from dsl import ir
from dsl.importer import leaves
from dsl.importer.forward import GraphWriter
from dsl.importer.irwalk import literals, rebuild, skeleton
from dsl.importer.report import Finding, Report, source_of
from dsl.importer.trace import inlined, trace
from dsl.records import field, record

CONTAINERS: dict[type, Literal["Sequential", "ModuleList", "ModuleDict"]] = {
    nn.Sequential: "Sequential",
    nn.ModuleList: "ModuleList",
    nn.ModuleDict: "ModuleDict",
}


@record
class Instance:
    """One module of a user class, described with literal values."""

    module: nn.Module
    name: str  # qualified
    placeholder: str  # `§n`
    body: Any  # statements, or a Container for a subclass of a container
    inputs: list[str] = field(default_factory=list)


@record
class TreeReader:
    root: nn.Module
    report: Report
    omit_sizes: bool = True
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    instances: dict[type, list[Instance]] = field(default_factory=dict)
    failed: bool = False
    passed: dict[int, int] = field(default_factory=dict)  # id(module) -> positional args given
    _init_reported: set[tuple[type, str]] = field(default_factory=set)

    def describe(self, module: nn.Module, name: str) -> ir.ExprNode:
        """The expression that constructs `module` where its parent declares it."""
        kind = CONTAINERS.get(type(module))
        base = inlined(module)
        if base is not None and kind is None:
            kind = CONTAINERS[base]
            self.report.add(Finding("approximated", type(module).__name__, name,
                source_of(type(module).forward), f"a {kind} with a forward of its own: "
                f"written as a {kind}, its forward inside each caller's"))  # fmt: skip
        if kind is not None:
            return ir.Container(kind=kind, body=self.children(module, name))
        leaf = self._leaf(module, name)
        if leaf is not None:
            return leaf
        return self._instance(module, name)

    def _leaf(self, module: nn.Module, name: str) -> ir.ExprNode | None:
        spelled = leaves.layer_name(module)
        if spelled is None:
            return None
        arguments = leaves.constructor_arguments(module)
        omit = self.omit_sizes and id(module) in self.passed  # applied: its input is known
        call = None if arguments is None else leaves.leaf_call(module, spelled, arguments, omit)
        if call is None:
            self.failed = True
            self.report.add(
                Finding("unsupported", type(module).__name__, name, source_of(type(module)),
                        f"its constructor arguments cannot be read back ({module!r})")
            )  # fmt: skip
            return ir.Call(func=ir.Name(id="UNSUPPORTED"))
        return call

    def children(self, module: nn.Module, name: str) -> list[Any]:
        """A container's children: positional when torch numbers them 0, 1, ..."""
        items = list(module._modules.items())
        self._check_names(module, name, [k for k, _ in items])
        numbered = all(key == str(i) for i, (key, _) in enumerate(items))
        if isinstance(module, nn.Sequential):  # its children are applied in turn
            self.passed.update({id(child): 1 for _, child in items})
        out: list[Any] = []
        for key, child in items:
            if child is None:
                continue
            expr = self.describe(child, f"{name}.{key}" if name else key)
            out.append(ir.Layer(layer=expr) if numbered else ir.Let(let=[key], value=expr))
        return out

    def _instance(self, module: nn.Module, name: str) -> ir.ExprNode:
        placeholder = f"§{sum(len(v) for v in self.instances.values())}"
        base: Any = next((c for c in CONTAINERS if isinstance(module, c)), None)
        if base is not None and type(module).forward is base.forward:
            body: Any = ir.Container(kind=CONTAINERS[base], body=self.children(module, name))
            instance = Instance(module, name, placeholder, body)
        else:
            instance = self._graph_instance(module, name, placeholder)
        self.instances.setdefault(type(module), []).append(instance)
        return ir.Call(func=ir.Name(id=placeholder))

    def _graph_instance(self, module: nn.Module, name: str, placeholder: str) -> Instance:
        inputs, forward = self.forward(module, name, self._reserved(module))
        members = self.members(module, name)
        return Instance(module, name, placeholder, [*members, *forward], inputs)

    def _reserved(self, module: nn.Module) -> set[str]:
        return {*module._modules, *module._parameters, *module._buffers, "training"}

    def forward(
        self, module: nn.Module, name: str, reserved: set[str]
    ) -> tuple[list[str], list[Any]]:
        """The inputs and the forward statements of `module`, both training modes merged."""
        traced = trace(self.root, module, name, self.passed.get(id(module)), self.report)
        if traced is None:
            self.failed = True
            return ["x"], [ir.Return(return_=ir.Call(func=ir.Name(id="UNSUPPORTED")))]
        self._count_passed(module, traced.train)
        writer = GraphWriter(module, name, self.report, reserved)
        inputs, train = writer.body(traced.train)
        _, evaluation = writer.body(traced.eval)
        self.functions.update(writer.functions)
        self.failed |= writer.failed
        return inputs, merge_modes(train, evaluation)

    def _count_passed(self, module: nn.Module, graph: fx.Graph) -> None:
        for node in graph.nodes:
            if node.op == "call_module":
                child = module.get_submodule(str(node.target))
                self.passed[id(child)] = len(node.args) + len(node.kwargs)

    def members(self, module: nn.Module, name: str) -> list[Any]:
        """Own parameters and buffers, then children, in the order torch registered them."""
        self._check_names(module, name, [*module._parameters, *module._buffers, *module._modules])
        out: list[Any] = [
            self._tensor(module, key, t, name)
            for key, t in module._parameters.items()
            if t is not None
        ]
        out += [
            self._tensor(module, key, t, name)
            for key, t in module._buffers.items()
            if t is not None
        ]
        for key, child in module._modules.items():
            if child is not None:
                out.append(
                    ir.Let(let=[key], value=self.describe(child, f"{name}.{key}" if name else key))
                )
        return out  # fmt: skip

    def _check_names(self, module: nn.Module, name: str, keys: list[str]) -> None:
        quotable = set(module._modules) if isinstance(module, tuple(CONTAINERS)) else set()
        for key in keys:  # a container's child may be quoted: "block1-0" = ...
            if key not in quotable and not key.isdigit() and not ir.IDENTIFIER.fullmatch(key):
                self.failed = True
                self.report.add(Finding("unsupported", repr(key), name, source_of(type(module).__init__),
                    "a member name that is not an identifier cannot be written in a spec"))  # fmt: skip

    def _tensor(self, module: nn.Module, key: str, tensor: torch.Tensor, name: str) -> Any:
        shape: list[ir.ExprNode] = [ir.Const(value=int(n)) for n in tensor.shape]
        options: dict[str, ir.ExprNode] = {}
        where = f"{name}.{key}" if name else key
        init = initialiser(tensor)
        if isinstance(tensor, nn.Parameter):
            if not tensor.requires_grad:
                options["requires_grad"] = ir.Const(value=False)
            if init is not None:
                return ir.ParamDecl(param=key, shape=shape, init=init, options=options)
            if (type(module), key) not in self._init_reported:
                self._init_reported.add((type(module), key))
                self.report.add(Finding("init", f"{type(module).__name__}.{key}", name,
                    source_of(type(module).__init__), f"no initialisation recipe recognised for "
                    f"{where} (and its class's others); written as zeros(), the checkpoint "
                    "supplies the values"))  # fmt: skip
            return ir.ParamDecl(param=key, shape=shape, init=_zeros(), options=options)
        if key in module._non_persistent_buffers_set:
            options["persistent"] = ir.Const(value=False)
        if key in module._non_persistent_buffers_set and init is None:
            self.report.add(Finding("unsupported", key, name, source_of(type(module).__init__),
                f"the non-persistent buffer {where} is computed in __init__; its values "
                "are not in the state_dict and are written as zeros()"))  # fmt: skip
        dtype = leaves.dtype_name(tensor.dtype)
        return ir.BufferDecl(
            buffer=key, shape=shape, dtype=dtype, init=init or _zeros(), options=options
        )


def initialiser(tensor: torch.Tensor) -> ir.Call | None:
    """`zeros()`, `ones()` or `constant(v)` for a tensor that holds one value throughout."""
    if tensor.numel() == 0 or tensor.is_meta:
        return None
    first = tensor.flatten()[0]
    if not bool((tensor == first).all()):
        return None
    value = first.item()
    if value in (0, 1):
        return ir.Call(func=ir.Name(id="zeros" if value == 0 else "ones"))
    return ir.Call(func=ir.Name(id="constant"), args=[ir.Const(value=value)])


def _zeros() -> ir.Call:
    return ir.Call(func=ir.Name(id="zeros"))


def merge_modes(train: list[Any], evaluation: list[Any]) -> list[Any]:
    """One body for both modes: the same statements; or the same but for literals that are
    true in training and false in eval (`training=training`); or `if training:` with the
    training statements, returning, followed by the eval ones."""
    if train == evaluation:
        return train
    if not _same_but_training(train, evaluation):
        return [ir.If(if_=ir.Name(id="training"), then=train), *evaluation]
    others = iter([const.value for const, _ in literals(evaluation)])

    def visit(const: ir.Const, hint: str) -> ir.ExprNode:
        other = next(others)
        return ir.Name(id="training") if (const.value, other) == (True, False) else const

    return list(rebuild(train, visit))


def _same_but_training(train: list[Any], evaluation: list[Any]) -> bool:
    if skeleton(train) != skeleton(evaluation):
        return False
    for (a, _), (b, _) in zip(literals(train), literals(evaluation), strict=True):
        same = (type(a.value), a.value) == (type(b.value), b.value)
        if not same and (a.value, b.value) != (True, False):
            return False
    return True
