"""The whole import: the root becomes the `net`, every other module class a `block`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from dsl import ir
from dsl.importer.blocks import BlockMaker
from dsl.importer.report import Report
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
    declared = [_input(name, t) for name, t in zip(inputs, example_inputs, strict=False)]
    if isinstance(body, ir.Container):
        body = body.model_copy(update={"body": [*declared, *body.body]})
    else:
        body = [*declared, *body]
    name = type(root).__name__
    if any(d.block == name for d in maker.defs):
        name = f"{name}Net"
    spec = ir.SpecFile(defs=[*maker.defs, ir.NetDef(net=name, body=body)])
    return spec, reader.functions, not reader.failed


def _input(name: str, tensor: torch.Tensor) -> ir.Input:
    """`input x: [B, 3, 224, 224]`: the batch size symbolic, the rest as given."""
    shape: list[ir.ExprNode] = [ir.Const(value=int(n)) for n in tensor.shape]
    if shape:
        shape[0] = ir.Name(id="B")
    dtype = {torch.int64: "long", torch.bool: "bool", torch.int32: "int"}.get(tensor.dtype)
    return ir.Input(input=name, shape=shape, dtype=dtype)
