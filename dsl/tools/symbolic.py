"""Shapes as formulas of the input's symbols, through the whole net: `[B, 128, H/2, W/2]`,
`[B, T, 768]`, `[B, 64, H-2, W-2]`.

A spec is measured with one representative size per symbol, so a size deep in the net is
only a number. Here the meta model runs again with larger, divisible sizes, each symbol
doubled in turn: every dimension that moves with a symbol is fitted as `c + a*S` (a
rational `a`), and the fit must predict one more run with every symbol tripled; a
dimension that does not (H*W after a flatten) stays a number.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch
from torch import nn

from dsl.torchlib.symbols import Symbols, describe, meta_tensor

SCALE = 8  # the fit's base sizes: the representative ones times this (divisible by strides)


def symbolic_shapes(
    model: nn.Module, inputs: list[torch.Tensor], symbols: Symbols
) -> dict[int, list[str | None]] | None:
    """id(module) -> each dimension of its output as a formula (None: no formula fits),
    `model` itself included; None when the model cannot run at other sizes."""
    where = _symbol_positions(inputs, symbols)
    if not where:
        return None
    base = {s: v * (1 if _is_batch(s, where) else SCALE) for s, v in symbols.sizes.items()}
    base = {s: v for s, v in base.items() if s in _used(where)}
    runs = [
        base,
        *({**base, s: 2 * v} for s, v in base.items()),
        {s: 3 * v for s, v in base.items()},
    ]
    shapes = []
    for sizes in runs:
        measured = _run(model, inputs, where, sizes)
        if measured is None:
            return None
        shapes.append(measured)
    return {
        key: _dims(key, shapes, runs)
        for key in shapes[0]
        if all(key in s and len(s[key]) == len(shapes[0][key]) for s in shapes)
    }


def _symbol_positions(inputs: list[torch.Tensor], symbols: Symbols) -> list[list[str | None]]:
    """For each input, each dimension's symbol (None where the spec wrote a number)."""
    out = []
    for tensor in inputs:
        shape = list(tensor.shape)
        out.append(
            [
                d if d in symbols.sizes else None
                for d in map(symbols.dim, [shape] * len(shape), range(len(shape)))
            ]
        )
    return out if any(s for dims in out for s in dims) else []


def _used(where: list[list[str | None]]) -> set[str]:
    return {s for dims in where for s in dims if s is not None}


def _is_batch(symbol: str, where: list[list[str | None]]) -> bool:
    return any(dims and dims[0] == symbol for dims in where)


def _run(
    model: nn.Module,
    inputs: list[torch.Tensor],
    where: list[list[str | None]],
    sizes: dict[str, int],
) -> dict[int, tuple[int, ...]] | None:
    outputs: dict[int, tuple[int, ...]] = {}

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            outputs.setdefault(id(module), tuple(out.shape))

    fed = [
        meta_tensor([sizes.get(s, n) if s else n for s, n in zip(dims, t.shape)], t.dtype)
        for dims, t in zip(where, inputs)
    ]
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(*fed)
    except Exception:  # a size the spec fixed: the numbers it was measured with stay
        return None
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def _dims(
    key: int, shapes: list[dict[int, tuple[int, ...]]], runs: list[dict[str, int]]
) -> list[str | None]:
    return [_dim_text([s[key][i] for s in shapes], runs) for i in range(len(shapes[0][key]))]


def _dim_text(values: list[int], runs: list[dict[str, int]]) -> str | None:
    """One dimension's formula fitted on the runs: a number if it never moves, None if no
    formula of one symbol predicts every run."""
    base = runs[0]
    slopes = {s: Fraction(values[i + 1] - values[0], base[s]) for i, s in enumerate(base)}
    constant = Fraction(values[0]) - sum(a * base[s] for s, a in slopes.items())
    predicted = constant + sum(a * runs[-1][s] for s, a in slopes.items())
    terms = [(s, a) for s, a in slopes.items() if a != 0]
    if predicted != values[-1] or len(terms) > 1:
        return None
    return _formula(*terms[0], constant) if terms else str(values[0])


def _formula(symbol: str, slope: Fraction, constant: Fraction) -> str:
    text = symbol if slope.numerator == 1 else f"{slope.numerator}*{symbol}"
    if slope.denominator != 1:
        text += f"/{slope.denominator}"
    if constant == 0:
        return text
    return f"{text}{'+' if constant > 0 else '-'}{abs(constant)}"


def merged(formulas: list[str | None] | None, shape: Any, symbols: Symbols | None) -> str:
    """A shape as formulas where they were found, else as `Symbols.describe` shows it."""
    if not isinstance(shape, torch.Tensor):
        return describe(shape, symbols)
    sizes = list(shape.shape)
    if formulas is None or len(formulas) != len(sizes):
        return describe(shape, symbols)
    fallback = [symbols.dim(sizes, i) if symbols else str(n) for i, n in enumerate(sizes)]
    return "[" + ", ".join(f or d for f, d in zip(formulas, fallback)) + "]"
