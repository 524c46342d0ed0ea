"""Why a call failed on meta tensors, said in the spec's terms.

torch's own messages speak of representative sizes (B as 2, H as 32) and internal argument
names (batch2, "tensor number 1"); for the common mistakes (broadcasting, matmul, view and
reshape, cat and stack, embedding ids) say it with the spec's symbols, and give a hint.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dsl.torchlib.shape_rules_common import BROADCASTING
from dsl.torchlib.symbols import Symbols

_BROADCASTING = (*BROADCASTING, torch.where)


def explain(
    fn: Any, args: Sequence[Any], kwargs: dict[str, Any], symbols: Symbols
) -> tuple[str, str | None] | None:
    """What went wrong, in the spec's terms, and a hint; None to keep torch's message."""
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    method = (
        getattr(fn, "__name__", None)
        if isinstance(getattr(fn, "__self__", None), torch.Tensor)
        else None
    )
    if fn in _BROADCASTING and len(tensors) >= 2:
        return _explain_broadcast(tensors[0], tensors[1], symbols)
    if (
        fn in (operator.matmul, torch.matmul)
        and len(tensors) == 2
        and min(t.dim() for t in tensors) >= 1
    ):
        return _explain_matmul(tensors[0], tensors[1], symbols)
    if method in ("view", "reshape"):
        return _explain_view(fn.__self__, args, method, symbols)
    if fn is torch.reshape and tensors and len(args) == 2:
        return _explain_view(args[0], args[1:], "reshape", symbols)
    if fn in (torch.cat, torch.stack) and args and isinstance(args[0], list | tuple):
        return _explain_cat(
            fn, list(args[0]), kwargs.get("dim", args[1] if len(args) > 1 else 0), symbols
        )
    if (
        (isinstance(fn, nn.Embedding) or fn is F.embedding)
        and tensors
        and tensors[0].is_floating_point()
    ):
        dtype = str(tensors[0].dtype).removeprefix("torch.")
        return (
            f"Embedding looks up integer ids, but the input holds {dtype} values",
            "declare integer inputs with a dtype, as in 'input idx: long[B, T]', or convert with .long()",
        )
    return None


def _mismatch(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first dimension (counted from the end) where `a` and `b` do not broadcast."""
    for k in range(-min(len(a), len(b)), 0):
        if a[k] != b[k] and a[k] != 1 and b[k] != 1:
            return k
    return None


def _explain_broadcast(
    a: torch.Tensor, b: torch.Tensor, symbols: Symbols
) -> tuple[str, str | None] | None:
    k = _mismatch(a.shape, b.shape)
    if k is None:
        return None
    where = f"dimension {a.dim() + k}" if a.dim() == b.dim() else f"dimension {k} (from the end)"
    return (
        f"{where} is {symbols.dim(a.shape, k)} in the first and {symbols.dim(b.shape, k)} in the second; "
        "sizes must be equal, or 1, to broadcast",
        None,
    )


def _explain_matmul(
    a: torch.Tensor, b: torch.Tensor, symbols: Symbols
) -> tuple[str, str | None] | None:
    inner = -2 if b.dim() >= 2 else 0
    if a.shape[-1] != b.shape[inner]:
        which = {1: "only", 2: "first"}.get(b.dim(), "second-to-last")
        hint = None
        if b.dim() >= 2 and a.shape[-1] == b.shape[-1]:
            hint = "to contract the last dimensions of both, transpose the right one: a @ b.transpose(-2, -1)"
        return (
            f"the left's last dimension ({symbols.dim(a.shape, -1)}) must equal the right's {which} dimension ({symbols.dim(b.shape, inner)})",
            hint,
        )
    k = _mismatch(a.shape[:-2], b.shape[:-2]) if a.dim() > 2 and b.dim() > 2 else None
    if k is not None:
        return (
            f"the batch dimensions do not broadcast: {symbols.dim(a.shape, k - 2)} against {symbols.dim(b.shape, k - 2)}",
            None,
        )
    return None


def _explain_view(
    source: torch.Tensor, args: Sequence[Any], method: str, symbols: Symbols
) -> tuple[str, str | None] | None:
    target = args[0] if len(args) == 1 and isinstance(args[0], list | tuple | torch.Size) else args
    if (
        not target
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in target)
        or list(target).count(-1) > 1
    ):
        return None
    target = [int(d) for d in target]
    total, fixed = source.numel(), prod(d for d in target if d != -1)
    if (total == fixed) if -1 not in target else (fixed != 0 and total % fixed == 0):
        if method == "view" and not source.is_contiguous():
            return (
                "the sizes agree, but the tensor is not contiguous in memory (a transpose or permute made it so), and view() needs it to be",
                "call .contiguous() before .view(), or use .reshape()",
            )
        return None
    common = 0
    while common < min(len(target), source.dim()) and target[common] == source.shape[common]:
        common += 1
    rest, want = list(source.shape[common:]), target[common:]
    if not want:
        return None
    after = f" after {symbols.describe(source.shape[:common])}" if common else ""
    target_text = (
        "["
        + ", ".join([*(symbols.dim(source.shape, i) for i in range(common)), *map(str, want)])
        + "]"
    )
    have = f"{_product_text(rest)} element{'s' if prod(rest) != 1 else ''}{after}"
    known = [d for d in want if d != -1]
    if want.count(-1) == 1:
        return (
            f"it has {have}, which do not split evenly into {target_text} ({prod(rest)} is not a multiple of {_product_text(known)})",
            None,
        )
    return (f"it has {have}, but {target_text} asks for {_product_text(want)}", None)


def _product_text(sizes: Sequence[int]) -> str:
    sizes = [int(s) for s in sizes]
    if len(sizes) == 1:
        return str(sizes[0])
    return f"{' x '.join(map(str, sizes))} = {prod(sizes)}"


def _explain_cat(
    fn: Any, tensors: list[Any], dim: Any, symbols: Symbols
) -> tuple[str, str | None] | None:
    if (
        len(tensors) < 2
        or not all(isinstance(t, torch.Tensor) for t in tensors)
        or not isinstance(dim, int)
    ):
        return None
    name = "cat" if fn is torch.cat else "stack"
    first = tensors[0]
    for i, t in enumerate(tensors[1:], start=1):
        if t.dim() != first.dim():
            return (
                f"{name} needs inputs with the same number of dimensions; input 0 has {first.dim()}, input {i} has {t.dim()}",
                None,
            )
    if not -first.dim() - (fn is torch.stack) <= dim < first.dim() + (fn is torch.stack):
        return None
    axis = dim % (first.dim() + (fn is torch.stack))
    for i, t in enumerate(tensors[1:], start=1):
        for d in range(first.dim()):
            if (fn is torch.stack or d != axis) and t.shape[d] != first.shape[d]:
                rule = (
                    f"every dimension but {axis} must match"
                    if fn is torch.cat
                    else "all inputs must have the same shape"
                )
                hint = None
                if first.dim() >= 4 and d >= 2:  # the spatial sizes of feature maps
                    hint = "bring the maps to one size first, e.g. pad_to(smaller, larger) as U-Net does, or crop the larger"
                return (
                    f"{rule}, but dimension {d} is {symbols.dim(first.shape, d)} in input 0 and {symbols.dim(t.shape, d)} in input {i}",
                    hint,
                )
    return None
