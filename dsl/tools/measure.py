"""Running a spec on the meta device: resolved for a concrete input shape, compiled on meta,
and traced once with a forward hook on every module and torch's `FlopCounterMode`.

`dsl summary`, `dsl graph` and `dsl diff` measure networks this way: nothing is allocated,
so a 175B-parameter spec is measured in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsl import ir
from dsl.build.resolve import resolve
from dsl.errors import ArgumentError, ShapeError
from dsl.plan import Resolved
from dsl.torchlib.symbols import Symbols, describe


def parse_shape(text: str) -> tuple[int, ...]:
    """`1x3x256x256` (or `1,3,256,256`) -> (1, 3, 256, 256)."""
    parts = text.replace(",", "x").replace("X", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise ArgumentError(f"--input takes sizes such as 1x3x256x256, not '{text}'") from None
    if not dims or any(d < 0 for d in dims):
        raise ArgumentError(f"--input takes non-negative sizes such as 1x3x256x256, not '{text}'")
    return dims


def resolve_for_input(
    path: str | Path, params: dict[str, Any], shape: tuple[int, ...] | None, net: str | None = None
) -> Resolved:
    """Resolve a spec; `shape` (the first input's concrete shape) sets its symbolic dims."""
    resolved = resolve(path, net=net, params=params)
    if shape is None:
        return resolved
    name, meta = resolved.inputs[0]
    if len(shape) != meta.dim():
        raise ShapeError(
            f"--input gives {len(shape)} dimensions, but input '{name}' has {meta.dim()}: {resolved.symbols.describe(meta.shape)}"
        )
    sizes: dict[str, int] = {}
    for position, symbol in enumerate(_input_symbols(path, net, resolved)):
        if symbol is not None:
            if symbol in sizes and sizes[symbol] != shape[position]:
                raise ShapeError(
                    f"--input gives two sizes ({sizes[symbol]} and {shape[position]}) for '{symbol}'"
                )
            sizes[symbol] = shape[position]
    resolved = resolve(path, net=net, params=params, sizes=sizes)
    got = tuple(resolved.inputs[0][1].shape)
    for position, (want, have) in enumerate(zip(shape, got)):
        if want != have:
            raise ShapeError(
                f"--input asks for size {want} in dimension {position} of '{name}', but the spec fixes it at {have}",
                hint="set the net parameter that decides it with --set, or give that size",
            )
    return resolved


def _input_symbols(path: str | Path, net: str | None, resolved: Resolved) -> list[str | None]:
    """For each dimension of the first declared input, the symbol written there (or None)."""
    from dsl.elaborate.resolve import pick_net
    from dsl.syntax.loader import load

    spec_file, _ = load(path)
    node = pick_net(spec_file, net)
    body = node.body.body if isinstance(node.body, ir.Container) else node.body
    first = next((s for s in body if isinstance(s, ir.Input)), None)
    if first is None or first.shape is None:
        return []
    params = {p.name for p in node.params}
    return [
        e.id
        if isinstance(e, ir.Name) and e.id not in params and e.id in resolved.symbols.sizes
        else None
        for e in first.shape
    ]


def meta_model(resolved: Resolved) -> nn.Module:
    from dsl.build.compile import compile_resolved

    return compile_resolved(resolved, device="meta")


@dataclass
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
