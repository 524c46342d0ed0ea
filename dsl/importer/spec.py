"""The whole import: the root becomes the `net`, every other module class a `block`."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from dsl import ir
from dsl.importer.blocks import BlockMaker
from dsl.importer.leaves import dtype_name
from dsl.importer.report import Finding, Report, source_of
from dsl.importer.tree import CONTAINERS, TreeReader


def write_spec(
    root: nn.Module, example_inputs: Sequence[torch.Tensor], report: Report, omit_sizes: bool
) -> tuple[ir.SpecFile, dict[str, Callable[..., Any]], bool]:
    """The spec, the functions it needs registered, and whether everything was expressed."""
    reader = TreeReader(root, report, omit_sizes)
    if type(root) in CONTAINERS:
        inputs = ["x"]
        body: Any = ir.Container(kind=CONTAINERS[type(root)], body=reader.children(root, ""))
    else:
        reserved = {*root._modules, *root._parameters, *root._buffers, "training", "B"}
        inputs, forward = reader.forward(root, "", reserved)
        members = reader.members(root, "")
        body = [*members, *forward]
    maker = BlockMaker()
    maker.make(reader.instances)
    body = maker.resolve(body)
    declared: list[Any] = [_input(n, t) for n, t in zip(inputs, example_inputs, strict=False)]
    declared += [ir.Input(input=n) for n in inputs[len(declared) :]]  # shapes unknown
    recipe = _recipe(root)
    if recipe is not None:
        declared.append(ir.InitBlock(init=[ir.InitRule(init=recipe)]))
    _report_init_code(root, report, recipe is not None)
    if isinstance(body, ir.Container):
        body = body.replace(body=[*declared, *body.body])
    else:
        body = [*declared, *body]
    name = type(root).__name__
    if any(d.block == name for d in maker.defs):
        name = f"{name}Net"
    spec = ir.SpecFile(defs=[*maker.defs, ir.NetDef(net=name, body=body)])
    return spec, reader.functions, not reader.failed


_INIT_CALL = re.compile(r"\binit\.(\w+_)\(")


def _recipe(root: nn.Module) -> ir.Call | None:
    """The language's recipe for the init loop of torchvision's ResNet and VGG (each draws
    as that loop does, so a seeded build gives torchvision's weights)."""
    qualified = f"{type(root).__module__}.{type(root).__qualname__}"
    if qualified == "torchvision.models.vgg.VGG":
        return ir.Call(func=ir.Name(id="vgg"))
    if qualified != "torchvision.models.resnet.ResNet":
        return None
    last = [getattr(m, "bn3", None) or getattr(m, "bn2", None) for m in root.modules()]
    zeroed = [bn for bn in last if isinstance(bn, nn.BatchNorm2d)]
    if zeroed and all(not bool(bn.weight.any()) for bn in zeroed):
        return ir.Call(
            func=ir.Name(id="resnet"), kwargs={"zero_init_residual": ir.Const(value=True)}
        )
    return ir.Call(func=ir.Name(id="resnet"))


def _report_init_code(root: nn.Module, report: Report, recipe: bool) -> None:
    """Initialisation written in the model's own classes (`nn.init.kaiming_normal_(...)`)
    is not carried over, unless the root's is a recipe: the layers keep torch's defaults."""
    for cls in dict.fromkeys(type(m) for m in root.modules()):
        if cls.__module__.startswith("torch.") or (recipe and cls is type(root)):
            continue
        try:
            lines, first = inspect.getsourcelines(cls)
        except (OSError, TypeError):
            continue
        for offset, line in enumerate(lines):
            found = _INIT_CALL.search(line)
            if found:
                path = source_of(cls).rpartition(":")[0]
                report.add(Finding("init", f"init.{found[1]}", "", f"{path}:{first + offset}",
                    f"{cls.__name__} initialises with its own code; not carried over: the "
                    "spec's layers keep torch's default initialisation"))  # fmt: skip
                break


def _input(name: str, tensor: torch.Tensor) -> ir.Input:
    """`input x: [B, 3, 224, 224]`: the batch size symbolic, the rest as given."""
    shape: list[ir.ExprNode] = [ir.Const(value=int(n)) for n in tensor.shape]
    if shape:
        shape[0] = ir.Name(id="B")
    return ir.Input(input=name, shape=shape, dtype=dtype_name(tensor.dtype))
