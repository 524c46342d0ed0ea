"""Representative sizes for symbolic dims (B, H, W), and shapes written as a person reads them.

Shapes are checked on meta tensors of concrete sizes: each symbol stands for one size while a
spec is elaborated, and `Symbols` remembers which, so that reports say `[B, 64, H, W]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

BATCH_SIZE = 2  # what a leading symbolic dim (B, N) stands for while shapes are checked
SPATIAL_SIZES = (
    32,
    48,
    64,
    80,
    96,
    112,
)  # what other symbolic dims stand for, in order of appearance

DTYPES = {
    "float": torch.float32,
    "float32": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "long": torch.int64,
    "int64": torch.int64,
    "int": torch.int32,
    "int32": torch.int32,
    "bool": torch.bool,
}


class Symbols:
    """Chooses a representative size for each symbolic dim and remembers it for reports."""

    def __init__(self, sizes: dict[str, int] | None = None) -> None:
        self.sizes: dict[str, int] = dict(sizes or {})
        self._spatial = 0
        self._positions: dict[str, set[int]] = {}  # the dimensions each symbol was declared at

    def size(self, name: str, position: int) -> int:
        self._positions.setdefault(name, set()).add(position)
        if name not in self.sizes:
            if position == 0:
                self.sizes[name] = BATCH_SIZE
            else:
                self.sizes[name] = SPATIAL_SIZES[self._spatial % len(SPATIAL_SIZES)]
                self._spatial += 1
        return self.sizes[name]

    def fingerprint(self) -> tuple:
        """What choosing sizes changes: the sizes, and how many places each symbol was met."""
        return tuple(self.sizes.items()), tuple((k, len(v)) for k, v in self._positions.items())

    def describe(self, shape: Sequence[int]) -> str:
        """`[B, 64, H, W]`: a size is shown as a symbol where it equals exactly one symbol's
        representative size and sits where that symbol was declared (so that 32 channels
        are not shown as H because H happens to stand for 32)."""
        return "[" + ", ".join(self.dim(shape, i) for i in range(len(shape))) + "]"

    def dim(self, shape: Sequence[int], index: int) -> str:
        """Dimension `index` of `shape` as `describe` shows it."""
        size = int(shape[index])
        names = [name for name, value in self.sizes.items() if value == size]
        if len(names) != 1:
            return str(size)
        declared = self._positions.get(names[0])
        return names[0] if declared is None or index % len(shape) in declared else str(size)


def meta_tensor(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def describe(value: Any, symbols: Symbols | None = None) -> str:
    """A shape (or nested shapes) as a person reads it."""
    if isinstance(value, torch.Tensor):
        shape = list(value.shape)
        return symbols.describe(shape) if symbols else "[" + ", ".join(map(str, shape)) + "]"
    if isinstance(value, tuple | list):
        return "(" + ", ".join(describe(v, symbols) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {describe(v, symbols)}" for k, v in value.items()) + "}"
    return repr(value)
