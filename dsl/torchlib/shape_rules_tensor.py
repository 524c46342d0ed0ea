"""Shape rules for torch functions and tensor methods: elementwise ops, reductions,
joining, linear algebra and factories (see `dsl.torchlib.shape_rules`)."""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from dsl.torchlib.shape_rules_common import (
    Shape,
    float_meta,
    int_tuple,
    is_meta,
    meta_empty,
    normal_dim,
)

# ============================================================================ elementwise


def same(input: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    return input if float_meta(input) else None


def checked_elementwise(fn: Callable[..., Any]) -> Callable[..., torch.Tensor | None]:
    """An elementwise rule that first checks the arguments fit `fn`'s signature."""
    try:
        signature = inspect.signature(fn)
    except ValueError:  # a builtin such as F.gelu: torch checks its arguments itself, at run time
        return same

    def rule(*args: Any, **kwargs: Any) -> torch.Tensor | None:
        bound = signature.bind(*args, **kwargs)
        if (
            "dim" in bound.arguments
            and bound.arguments["dim"] is not None
            and normal_dim(bound.arguments["dim"], args[0].dim()) is None
        ):
            return None
        if fn is F.dropout and not 0.0 <= bound.arguments.get("p", 0.5) <= 1.0:
            return None
        dtype = bound.arguments.get("dtype")
        result = same(*args)
        return result if result is None or dtype is None else meta_empty(result.shape, dtype)

    return rule


def broadcast(*tensors: torch.Tensor) -> Shape | None:
    return broadcast_shapes(*(tuple(t.shape) for t in tensors))


def broadcast_shapes(*shapes: Shape) -> Shape | None:
    """torch's broadcasting, in plain Python: torch.broadcast_shapes imports sympy."""
    if all(s == shapes[0] for s in shapes):  # a residual add
        return shapes[0]
    ndim = max(len(s) for s in shapes)
    out = []
    for sizes in zip(*((1,) * (ndim - len(s)) + s for s in shapes), strict=True):
        wide = {n for n in sizes if n != 1}
        if len(wide) > 1:
            return None
        out.append(wide.pop() if wide else 1)
    return tuple(out)


def binary(kind: Callable[..., Any]) -> Callable[..., torch.Tensor | None]:
    def rule(a: Any, b: Any, **kwargs: Any) -> torch.Tensor | None:
        if kwargs or not all(
            isinstance(v, torch.Tensor | int | float) and not isinstance(v, bool) for v in (a, b)
        ):
            return None
        tensors = [v for v in (a, b) if isinstance(v, torch.Tensor)]
        if not tensors or not all(t.is_meta and t.dtype != torch.bool for t in tensors):
            return None
        shape = broadcast(*tensors)
        dtype = torch.result_type(a, b)
        if kind in (operator.truediv, torch.div) and not (
            dtype.is_floating_point or dtype.is_complex
        ):
            dtype = torch.get_default_dtype()
        if kind in (operator.floordiv, operator.mod, operator.pow) and not dtype.is_floating_point:
            return None  # integer division by zero and negative powers are errors torch must see
        return None if shape is None or dtype == torch.bool else meta_empty(shape, dtype)

    return rule


def where(condition: Any, input: Any, other: Any) -> torch.Tensor | None:
    tensors = [v for v in (condition, input, other) if isinstance(v, torch.Tensor)]
    if (
        not is_meta(condition)
        or condition.dtype != torch.bool
        or not all(t.is_meta for t in tensors)
    ):
        return None
    if not all(isinstance(v, torch.Tensor | int | float) for v in (input, other)):
        return None
    shape = broadcast(*tensors)
    return None if shape is None else meta_empty(shape, torch.result_type(input, other))


def masked_fill(self: torch.Tensor, mask: Any, value: Any) -> torch.Tensor | None:
    if (
        not is_meta(mask)
        or mask.dtype != torch.bool
        or not isinstance(value, int | float)
        or isinstance(value, bool)
    ):
        return None
    return (
        self
        if broadcast(self, mask) == tuple(self.shape) and self.dtype.is_floating_point
        else None
    )


# ============================================================================ reductions


def reduce(kind: str) -> Callable[..., torch.Tensor | None]:
    def rule(
        input: torch.Tensor,
        dim: Any = None,
        keepdim: bool = False,
        *,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor | None:
        if not is_meta(input) or not isinstance(keepdim, bool):
            return None
        dims = _reduced_dims(input.dim(), dim, kind)
        if dims is None:
            return None
        out_dtype = dtype or input.dtype
        if kind == "mean" and not out_dtype.is_floating_point:
            return None
        if kind == "sum" and dtype is None and not input.dtype.is_floating_point:
            out_dtype = torch.int64
        if kind in ("amax", "amin") and (dtype is not None or input.numel() == 0):
            return None
        shape = (
            [1 if i in dims else n for i, n in enumerate(input.shape)]
            if keepdim
            else [n for i, n in enumerate(input.shape) if i not in dims]
        )
        return meta_empty(shape, out_dtype)

    return rule


def _reduced_dims(ndim: int, dim: Any, kind: str) -> set[int] | None:
    if dim is None or (dim == () and kind in ("amax", "amin")):
        return set(range(ndim))
    listed = list(dim) if isinstance(dim, list | tuple) else [dim]
    dims = [normal_dim(d, ndim) for d in listed]
    if not listed or None in dims or len(set(dims)) != len(dims):
        return None
    return set(dims)  # type: ignore[arg-type]


# ============================================================================ joining


def _joined(tensors: Any) -> list[torch.Tensor] | None:
    if not isinstance(tensors, list | tuple) or not tensors or not all(is_meta(t) for t in tensors):
        return None
    if (
        len({t.dtype for t in tensors}) != 1
        or len({t.dim() for t in tensors}) != 1
        or tensors[0].dim() == 0
    ):
        return None
    return list(tensors)


def cat(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    parts = _joined(tensors)
    at = None if parts is None else normal_dim(dim, parts[0].dim())
    if parts is None or at is None:
        return None
    rest = {tuple(n for i, n in enumerate(t.shape) if i != at) for t in parts}
    if len(rest) != 1:
        return None
    shape = list(parts[0].shape)
    shape[at] = sum(t.shape[at] for t in parts)
    return meta_empty(shape, parts[0].dtype)


def stack(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    parts = _joined(tensors)
    at = None if parts is None else normal_dim(dim, parts[0].dim(), extra=1)
    if parts is None or at is None or len({t.shape for t in parts}) != 1:
        return None
    shape = list(parts[0].shape)
    shape.insert(at, len(parts))
    return meta_empty(shape, parts[0].dtype)


# ============================================================================ linear algebra


def matmul(a: Any, b: Any) -> torch.Tensor | None:
    if (
        not (is_meta(a) and is_meta(b))
        or a.dtype != b.dtype
        or a.dim() == 0
        or b.dim() == 0
        or not a.dtype.is_floating_point
    ):
        return None
    a_shape = (1, *a.shape) if a.dim() == 1 else tuple(a.shape)
    b_shape = (*b.shape, 1) if b.dim() == 1 else tuple(b.shape)
    if a_shape[-1] != b_shape[-2]:
        return None
    batch = broadcast_shapes(a_shape[:-2], b_shape[:-2])
    if batch is None:
        return None
    shape = [
        *batch,
        *([a_shape[-2]] if a.dim() > 1 else []),
        *([b_shape[-1]] if b.dim() > 1 else []),
    ]
    return meta_empty(shape, a.dtype)


def linear(input: Any, weight: Any, bias: Any = None) -> torch.Tensor | None:
    if (
        not float_meta(input, weight)
        or weight.dim() != 2
        or input.dim() < 1
        or input.dtype != weight.dtype
    ):
        return None
    if input.shape[-1] != weight.shape[1]:
        return None
    if bias is not None and (
        not is_meta(bias)
        or bias.dtype != weight.dtype
        or tuple(bias.shape) not in ((weight.shape[0],), ())
    ):
        return None
    return meta_empty((*input.shape[:-1], weight.shape[0]), input.dtype)


def embedding(
    input: Any,
    weight: Any,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    *args: Any,
    **kwargs: Any,
) -> torch.Tensor | None:
    if (
        not (is_meta(input) and is_meta(weight))
        or input.dtype not in (torch.int64, torch.int32)
        or weight.dim() != 2
    ):
        return None
    if max_norm is not None or (
        padding_idx is not None and not -weight.shape[0] <= padding_idx < weight.shape[0]
    ):
        return None
    return meta_empty((*input.shape, weight.shape[1]), weight.dtype)


def layer_norm(
    input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> torch.Tensor | None:
    listed = (
        normalized_shape
        if isinstance(normalized_shape, list | tuple | torch.Size)
        else (normalized_shape,)
    )
    shape = int_tuple(listed, len(listed))
    if (
        not float_meta(input)
        or shape is None
        or not shape
        or tuple(input.shape[-len(shape) :]) != shape
        or input.dim() < len(shape)
    ):
        return None
    if any(
        p is not None and (not is_meta(p) or tuple(p.shape) != shape or p.dtype != input.dtype)
        for p in (weight, bias)
    ):
        return None
    return input


def attention(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor | None:
    if (
        not float_meta(query, key, value)
        or attn_mask is not None
        or enable_gqa
        or len({query.dtype, key.dtype, value.dtype}) != 1
    ):
        return None
    if (
        min(t.dim() for t in (query, key, value)) < 2
        or not query.shape[:-2] == key.shape[:-2] == value.shape[:-2]
    ):
        return None
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        return None
    return meta_empty((*query.shape[:-1], value.shape[-1]), query.dtype)


# ============================================================================ factories


def arange(
    *args: Any, dtype: torch.dtype | None = None, device: Any = None, **kwargs: Any
) -> torch.Tensor | None:
    if kwargs or device is None or torch.device(device).type != "meta" or not 1 <= len(args) <= 3:
        return None
    if not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args):
        return None
    start, end, step = (
        (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
    )
    if step == 0 or (end - start) * step < 0:
        return None
    length = math.ceil((end - start) / step)
    if dtype is None:
        dtype = torch.int64 if all(isinstance(a, int) for a in args) else torch.get_default_dtype()
    return meta_empty((length,), dtype)


def like(input: Any, *, dtype: torch.dtype | None = None, **kwargs: Any) -> torch.Tensor | None:
    if not is_meta(input) or kwargs:
        return None
    return meta_empty(input.shape, dtype or input.dtype)


def repeat(self: torch.Tensor, *sizes: Any) -> torch.Tensor | None:
    listed = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], list | tuple) else sizes
    repeats = int_tuple(listed, len(listed))
    if not repeats or len(repeats) < self.dim() or min(repeats, default=0) < 0:
        return None
    shape = (1,) * (len(repeats) - self.dim()) + tuple(self.shape)
    return meta_empty([n * r for n, r in zip(shape, repeats, strict=True)], self.dtype)


def argmax(
    self: torch.Tensor, dim: int | None = None, keepdim: bool = False
) -> torch.Tensor | None:
    if (
        self.numel() == 0
        or self.dtype == torch.bool
        or (dim is None and keepdim)
        or isinstance(dim, list | tuple)
    ):
        return None
    result = reduce("amax")(self, dim, keepdim)
    return None if result is None else meta_empty(result.shape, torch.int64)
