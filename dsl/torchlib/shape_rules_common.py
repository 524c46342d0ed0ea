"""What the shape rules share: meta tensors made and tested, dims and sizes normalised.

A rule answers only when the call is certainly valid, so these helpers return None for
anything torch might refuse (see `dsl.torchlib.shape_rules`).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch

Shape = tuple[int, ...]

# Operators and functions that broadcast their two operands.
BROADCASTING = (
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.floordiv,
    operator.mod,
    operator.pow,
    torch.add,
    torch.sub,
    torch.mul,
    torch.div,
)


def is_meta(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_meta


def float_meta(*tensors: Any) -> bool:
    return all(
        [isinstance(t, torch.Tensor) and t.is_meta and t.dtype.is_floating_point for t in tensors]
    )


_META = torch.device("meta")


def meta_empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device=_META)


def normal_dim(dim: Any, ndim: int, extra: int = 0) -> int | None:
    """`dim` normalised into range(ndim + extra), or None when torch would refuse it."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        return None
    size = max(ndim + extra, 1)
    return dim % size if -size <= dim < size else None


def int_tuple(value: Any, n: int) -> Shape | None:
    values = tuple(value) if isinstance(value, list | tuple) else (value,) * n
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return values
