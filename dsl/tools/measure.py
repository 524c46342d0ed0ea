"""Running a spec on the meta device: resolved for its input sizes (`dsl.tools.sizes`),
compiled on meta, and traced once with a forward hook on every module and torch's `FlopCounterMode`.

`dsl summary`, `dsl graph` and `dsl diff` measure networks this way: nothing is allocated,
so a 175B-parameter spec is measured in seconds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dsl.plan import Resolved
from dsl.records import record
from dsl.torchlib.symbols import Symbols, describe


def meta_model(resolved: Resolved) -> nn.Module:
    from dsl.build.compile import compile_resolved

    return compile_resolved(resolved, device="meta")


@record
class Trace:
    """One forward pass on meta tensors: each module's first inputs and output, FLOPs."""

    calls: dict[int, tuple[tuple[Any, ...], Any]]
    flops: dict[str, int]  # qualified name ("" for the whole model) -> FLOPs, children included
    total_flops: int
    activation_bytes: int
    output: Any


def trace(model: nn.Module, inputs: list[torch.Tensor], *, count_flops: bool = True) -> Trace:
    from torch.utils.flop_counter import FlopCounterMode

    calls: dict[int, tuple[tuple[Any, ...], Any]] = {}
    activations = [0]

    def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        calls.setdefault(id(module), (args, out))
        if next(module.children(), None) is None:  # a leaf: its output is new memory
            activations[0] += sum(
                t.numel() * t.element_size() for t in _tensors(out) if not any(t is a for a in args)
            )

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            if count_flops:
                with FlopCounterMode(display=False) as counter:
                    output = model(*inputs)
            else:
                counter = None
                output = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    flops: dict[str, int] = {}
    total = 0
    if counter is not None:
        root = type(model).__name__
        for key, ops in counter.get_flop_counts().items():
            value = int(sum(ops.values()))
            if key == "Global":
                flops[""] = value
            elif key.startswith(root + "."):
                flops[key[len(root) + 1 :]] = value
        total = int(counter.get_total_flops())
    return Trace(calls, flops, total, activations[0], output)


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def shape_text(value: Any, symbols: Symbols | None) -> str:
    if value is None:
        return "-"
    return describe(value, symbols)
