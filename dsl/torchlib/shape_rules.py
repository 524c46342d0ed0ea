"""Output shapes computed from the arguments, for the layers and functions specs use most.

On meta tensors torch answers most compute ops through Python meta kernels; the first one in
a process imports `torch._meta_registrations`, sympy and often `torch._dynamo` (0.4-2 s and
~150 MB), and BatchNorm alone costs ~4 ms per call. A rule here gives the same shape and
dtype from the arguments. A rule answers only when the call is certainly valid; for anything
else it returns None and the op runs on meta, so torch still reports the mistake and
`dsl.torchlib.shapes` explains it. `tests/test_shape_rules.py` checks every rule against torch.
"""

from __future__ import annotations

import inspect
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Shape = tuple[int, ...]


def infer(fn: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any | None:
    """The meta result of `fn(*args, **kwargs)` when a rule knows it, else None."""
    try:
        if isinstance(fn, nn.Module):
            rule = _module_rule(fn)
            return (
                None
                if rule is None or kwargs or len(args) != 1 or not _is_meta(args[0])
                else rule(fn, args[0])
            )
        owner = getattr(fn, "__self__", None)
        if isinstance(owner, torch.Tensor):
            method = METHOD_RULES.get(getattr(fn, "__name__", ""))
            return None if method is None or not owner.is_meta else method(owner, *args, **kwargs)
        rule = FUNCTION_RULES.get(fn) if _hashable(fn) else None
        return None if rule is None else rule(*args, **kwargs)
    except (TypeError, ValueError, IndexError):  # arguments torch would reject: let torch say so
        return None


def _hashable(fn: Any) -> bool:
    try:
        hash(fn)
    except TypeError:
        return False
    return True


def _is_meta(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_meta


def _float_meta(*tensors: Any) -> bool:
    return all(
        [isinstance(t, torch.Tensor) and t.is_meta and t.dtype.is_floating_point for t in tensors]
    )


_META = torch.device("meta")


def _empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device=_META)


def _dim(dim: Any, ndim: int, extra: int = 0) -> int | None:
    """`dim` normalised into range(ndim + extra), or None when torch would refuse it."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        return None
    size = max(ndim + extra, 1)
    return dim % size if -size <= dim < size else None


def _tuple(value: Any, n: int) -> Shape | None:
    values = tuple(value) if isinstance(value, list | tuple) else (value,) * n
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return values


# ============================================================================ elementwise


def _same(input: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    return input if _float_meta(input) else None


def _bound(fn: Callable[..., Any]) -> Callable[..., torch.Tensor | None]:
    """An elementwise rule that first checks the arguments fit `fn`'s signature."""
    try:
        signature = inspect.signature(fn)
    except ValueError:  # a builtin such as F.gelu: torch checks its arguments itself, at run time
        return _same

    def rule(*args: Any, **kwargs: Any) -> torch.Tensor | None:
        bound = signature.bind(*args, **kwargs)
        if (
            "dim" in bound.arguments
            and bound.arguments["dim"] is not None
            and _dim(bound.arguments["dim"], args[0].dim()) is None
        ):
            return None
        if fn is F.dropout and not 0.0 <= bound.arguments.get("p", 0.5) <= 1.0:
            return None
        dtype = bound.arguments.get("dtype")
        result = _same(*args)
        return result if result is None or dtype is None else _empty(result.shape, dtype)

    return rule


def _broadcast(*tensors: torch.Tensor) -> Shape | None:
    return _broadcast_shapes(*(tuple(t.shape) for t in tensors))


def _broadcast_shapes(*shapes: Shape) -> Shape | None:
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


def _binary(kind: Callable[..., Any]) -> Callable[..., torch.Tensor | None]:
    def rule(a: Any, b: Any, **kwargs: Any) -> torch.Tensor | None:
        if kwargs or not all(
            isinstance(v, torch.Tensor | int | float) and not isinstance(v, bool) for v in (a, b)
        ):
            return None
        tensors = [v for v in (a, b) if isinstance(v, torch.Tensor)]
        if not tensors or not all(t.is_meta and t.dtype != torch.bool for t in tensors):
            return None
        shape = _broadcast(*tensors)
        dtype = torch.result_type(a, b)
        if kind in (operator.truediv, torch.div) and not (
            dtype.is_floating_point or dtype.is_complex
        ):
            dtype = torch.get_default_dtype()
        if kind in (operator.floordiv, operator.mod, operator.pow) and not dtype.is_floating_point:
            return None  # integer division by zero and negative powers are errors torch must see
        return None if shape is None or dtype == torch.bool else _empty(shape, dtype)

    return rule


def _where(condition: Any, input: Any, other: Any) -> torch.Tensor | None:
    tensors = [v for v in (condition, input, other) if isinstance(v, torch.Tensor)]
    if (
        not _is_meta(condition)
        or condition.dtype != torch.bool
        or not all(t.is_meta for t in tensors)
    ):
        return None
    if not all(isinstance(v, torch.Tensor | int | float) for v in (input, other)):
        return None
    shape = _broadcast(*tensors)
    return None if shape is None else _empty(shape, torch.result_type(input, other))


def _masked_fill(self: torch.Tensor, mask: Any, value: Any) -> torch.Tensor | None:
    if (
        not _is_meta(mask)
        or mask.dtype != torch.bool
        or not isinstance(value, int | float)
        or isinstance(value, bool)
    ):
        return None
    return (
        self
        if _broadcast(self, mask) == tuple(self.shape) and self.dtype.is_floating_point
        else None
    )


# ============================================================================ reductions


def _reduce(kind: str) -> Callable[..., torch.Tensor | None]:
    def rule(
        input: torch.Tensor,
        dim: Any = None,
        keepdim: bool = False,
        *,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor | None:
        if not _is_meta(input) or not isinstance(keepdim, bool):
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
        return _empty(shape, out_dtype)

    return rule


def _reduced_dims(ndim: int, dim: Any, kind: str) -> set[int] | None:
    if dim is None or (dim == () and kind in ("amax", "amin")):
        return set(range(ndim))
    listed = list(dim) if isinstance(dim, list | tuple) else [dim]
    dims = [_dim(d, ndim) for d in listed]
    if not listed or None in dims or len(set(dims)) != len(dims):
        return None
    return set(dims)  # type: ignore[arg-type]


# ============================================================================ joining


def _joined(tensors: Any) -> list[torch.Tensor] | None:
    if (
        not isinstance(tensors, list | tuple)
        or not tensors
        or not all(_is_meta(t) for t in tensors)
    ):
        return None
    if (
        len({t.dtype for t in tensors}) != 1
        or len({t.dim() for t in tensors}) != 1
        or tensors[0].dim() == 0
    ):
        return None
    return list(tensors)


def _cat(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    parts = _joined(tensors)
    at = None if parts is None else _dim(dim, parts[0].dim())
    if parts is None or at is None:
        return None
    rest = {tuple(n for i, n in enumerate(t.shape) if i != at) for t in parts}
    if len(rest) != 1:
        return None
    shape = list(parts[0].shape)
    shape[at] = sum(t.shape[at] for t in parts)
    return _empty(shape, parts[0].dtype)


def _stack(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    parts = _joined(tensors)
    at = None if parts is None else _dim(dim, parts[0].dim(), extra=1)
    if parts is None or at is None or len({t.shape for t in parts}) != 1:
        return None
    shape = list(parts[0].shape)
    shape.insert(at, len(parts))
    return _empty(shape, parts[0].dtype)


# ============================================================================ linear algebra


def _matmul(a: Any, b: Any) -> torch.Tensor | None:
    if (
        not (_is_meta(a) and _is_meta(b))
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
    batch = _broadcast_shapes(a_shape[:-2], b_shape[:-2])
    if batch is None:
        return None
    shape = [
        *batch,
        *([a_shape[-2]] if a.dim() > 1 else []),
        *([b_shape[-1]] if b.dim() > 1 else []),
    ]
    return _empty(shape, a.dtype)


def _linear(input: Any, weight: Any, bias: Any = None) -> torch.Tensor | None:
    if (
        not _float_meta(input, weight)
        or weight.dim() != 2
        or input.dim() < 1
        or input.dtype != weight.dtype
    ):
        return None
    if input.shape[-1] != weight.shape[1]:
        return None
    if bias is not None and (
        not _is_meta(bias)
        or bias.dtype != weight.dtype
        or tuple(bias.shape) not in ((weight.shape[0],), ())
    ):
        return None
    return _empty((*input.shape[:-1], weight.shape[0]), input.dtype)


def _embedding(
    input: Any,
    weight: Any,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    *args: Any,
    **kwargs: Any,
) -> torch.Tensor | None:
    if (
        not (_is_meta(input) and _is_meta(weight))
        or input.dtype not in (torch.int64, torch.int32)
        or weight.dim() != 2
    ):
        return None
    if max_norm is not None or (
        padding_idx is not None and not -weight.shape[0] <= padding_idx < weight.shape[0]
    ):
        return None
    return _empty((*input.shape, weight.shape[1]), weight.dtype)


def _layer_norm(
    input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> torch.Tensor | None:
    listed = (
        normalized_shape
        if isinstance(normalized_shape, list | tuple | torch.Size)
        else (normalized_shape,)
    )
    shape = _tuple(listed, len(listed))
    if (
        not _float_meta(input)
        or shape is None
        or not shape
        or tuple(input.shape[-len(shape) :]) != shape
        or input.dim() < len(shape)
    ):
        return None
    if any(
        p is not None and (not _is_meta(p) or tuple(p.shape) != shape or p.dtype != input.dtype)
        for p in (weight, bias)
    ):
        return None
    return input


def _attention(
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
        not _float_meta(query, key, value)
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
    return _empty((*query.shape[:-1], value.shape[-1]), query.dtype)


# ============================================================================ factories


def _arange(
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
    return _empty((length,), dtype)


def _like(input: Any, *, dtype: torch.dtype | None = None, **kwargs: Any) -> torch.Tensor | None:
    if not _is_meta(input) or kwargs:
        return None
    return _empty(input.shape, dtype or input.dtype)


def _repeat(self: torch.Tensor, *sizes: Any) -> torch.Tensor | None:
    listed = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], list | tuple) else sizes
    repeats = _tuple(listed, len(listed))
    if not repeats or len(repeats) < self.dim() or min(repeats, default=0) < 0:
        return None
    shape = (1,) * (len(repeats) - self.dim()) + tuple(self.shape)
    return _empty([n * r for n, r in zip(shape, repeats, strict=True)], self.dtype)


def _argmax(
    self: torch.Tensor, dim: int | None = None, keepdim: bool = False
) -> torch.Tensor | None:
    if (
        self.numel() == 0
        or self.dtype == torch.bool
        or (dim is None and keepdim)
        or isinstance(dim, list | tuple)
    ):
        return None
    result = _reduce("amax")(self, dim, keepdim)
    return None if result is None else _empty(result.shape, torch.int64)


# ============================================================================ convolution and pooling


def _window(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool = False
) -> int:
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _spatial(input: torch.Tensor, n: int) -> Shape | None:
    """The input's last `n` sizes, when it has n spatial dims with or without a batch."""
    return tuple(input.shape[-n:]) if input.dim() in (n + 1, n + 2) else None


def _conv(module: nn.modules.conv._ConvNd, input: torch.Tensor) -> torch.Tensor | None:
    n = len(module.kernel_size)
    sizes = _spatial(input, n)
    weight = module.weight
    if sizes is None or not _float_meta(input) or input.dtype != weight.dtype or not weight.is_meta:
        return None
    if input.shape[-n - 1] != module.in_channels:
        return None
    if module.transposed:
        if module.output_padding and any(
            op >= max(s, d)
            for op, s, d in zip(module.output_padding, module.stride, module.dilation, strict=True)
        ):
            return None
        padding = module.padding if isinstance(module.padding, tuple) else (0,) * n
        out = [
            (size - 1) * s - 2 * p + d * (k - 1) + op + 1
            for size, k, s, p, d, op in zip(
                sizes,
                module.kernel_size,
                module.stride,
                padding,
                module.dilation,
                module.output_padding,
                strict=True,
            )
        ]
    elif module.padding == "same":
        out = list(sizes)
    else:
        padding = (0,) * n if module.padding == "valid" else module.padding
        out = [
            _window(size, k, s, p, d)
            for size, k, s, p, d in zip(
                sizes, module.kernel_size, module.stride, padding, module.dilation, strict=True
            )
        ]
    if min(out) <= 0:
        return None
    return _empty((*input.shape[: -n - 1], module.out_channels, *out), input.dtype)


def _pool(
    n: int,
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> torch.Tensor | None:
    sizes = _spatial(input, n) if _float_meta(input) else None
    kernel = _tuple(kernel_size, n)
    strides = kernel if stride is None or stride == [] else _tuple(stride, n)
    pads, dilations = _tuple(padding, n), _tuple(dilation, n)
    if (
        sizes is None
        or None in (kernel, strides, pads, dilations)
        or not isinstance(ceil_mode, bool)
    ):
        return None
    if min(kernel + strides + dilations) <= 0 or any(
        2 * p > k or size < k for p, k, size in zip(pads, kernel, sizes, strict=True)
    ):  # type: ignore[operator]
        return None  # some of torch's pools refuse an input smaller than the window, padding or not
    out = [
        _window(*args, ceil_mode)
        for args in zip(sizes, kernel, strides, pads, dilations, strict=True)
    ]  # type: ignore[arg-type]
    if min(out) <= 0:
        return None
    return _empty((*input.shape[:-n], *out), input.dtype)


def _max_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> torch.Tensor | None:
    return (
        None
        if return_indices
        else _pool(2, input, kernel_size, stride, padding, dilation, ceil_mode)
    )


def _avg_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> torch.Tensor | None:
    return (
        None
        if divisor_override == 0
        else _pool(2, input, kernel_size, stride, padding, 1, ceil_mode)
    )


def _adaptive(n: int, input: Any, output_size: Any) -> torch.Tensor | None:
    sizes = _spatial(input, n) if _float_meta(input) else None
    wanted = tuple(output_size) if isinstance(output_size, list | tuple) else (output_size,) * n
    free = None in wanted  # keep that dim's size: only inside a tuple, and not for 1-d pools
    if (
        sizes is None
        or len(wanted) != n
        or min(sizes) <= 0
        or (free and (n == 1 or not isinstance(output_size, list | tuple)))
    ):
        return None
    out = [size if w is None else w for size, w in zip(sizes, wanted, strict=True)]
    if not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in out):
        return None
    return _empty((*input.shape[:-n], *out), input.dtype)


_INTERPOLATE_MODES = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


def _interpolate(
    input: Any,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> torch.Tensor | None:
    if (
        not _float_meta(input)
        or input.dim() not in (3, 4, 5)
        or antialias
        or (size is None) == (scale_factor is None)
    ):
        return None
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            return None
    elif _INTERPOLATE_MODES.get(mode) != input.dim():
        return None
    n, sizes = input.dim() - 2, tuple(input.shape[2:])
    if size is not None:
        out = _tuple(size, n)
    else:
        scales = (
            tuple(scale_factor) if isinstance(scale_factor, list | tuple) else (scale_factor,) * n
        )
        if len(scales) != n or not all(
            isinstance(s, int | float) and not isinstance(s, bool) and s > 0 for s in scales
        ):
            return None
        out = tuple(math.floor(float(s) * f) for s, f in zip(sizes, scales, strict=True))
    if out is None or min(out) <= 0:
        return None
    return _empty((*input.shape[:2], *out), input.dtype)


# ============================================================================ modules


def _norm(module: nn.Module, input: torch.Tensor) -> torch.Tensor | None:
    """BatchNorm, InstanceNorm, GroupNorm: the input's shape, when the channels fit."""
    if not _float_meta(input) or input.dim() < 2:
        return None
    stats = [t for t in (module.weight, getattr(module, "running_mean", None)) if t is not None]
    if isinstance(module, nn.GroupNorm):
        fits = (
            input.shape[1] == module.num_channels
            and input.shape[1] % module.num_groups == 0
            and input.numel() > module.num_groups
        )
    else:
        module._check_input_dim(input)  # raises torch's own ValueError (BatchNorm2d on a 2-d input)
        instance = isinstance(module, nn.modules.instancenorm._InstanceNorm)
        batched = not instance or (
            input.dim() == module._get_no_batch_dim() + 1 and input[0, 0].numel() > 1
        )
        one_value = (
            module.training
            and isinstance(module, nn.modules.batchnorm._BatchNorm)
            and input.numel() == input.shape[1]
        )
        fits = batched and not one_value and (not stats or input.shape[1] == module.num_features)
    return input if fits and all(t.dtype == input.dtype for t in stats) else None


def _layer_norm_module(module: nn.LayerNorm, input: torch.Tensor) -> torch.Tensor | None:
    return _layer_norm(input, module.normalized_shape, module.weight, module.bias)


def _preserving(module: nn.Module, input: torch.Tensor) -> torch.Tensor | None:
    if (
        isinstance(module, nn.PReLU)
        and module.num_parameters != 1
        and (input.dim() < 2 or input.shape[1] != module.num_parameters)
    ):
        return None
    if isinstance(module, nn.LocalResponseNorm) and input.dim() < 3:
        return None
    if (
        isinstance(module, nn.Softmax | nn.LogSoftmax | nn.Softmin)
        and module.dim is not None
        and _dim(module.dim, input.dim()) is None
    ):
        return None
    own = [
        p for p in module._parameters.values() if p is not None
    ]  # parameters(recurse=False), without its generators
    return input if _float_meta(input) and all(p.dtype == input.dtype for p in own) else None


def _pool_module(module: nn.Module, input: torch.Tensor) -> torch.Tensor | None:
    n = int(type(module).__name__[-2])
    if getattr(module, "return_indices", False) or getattr(module, "divisor_override", None) == 0:
        return None
    return _pool(
        n,
        input,
        module.kernel_size,
        module.stride,
        module.padding,
        getattr(module, "dilation", 1),
        module.ceil_mode,
    )


def _adaptive_module(module: nn.Module, input: torch.Tensor) -> torch.Tensor | None:
    if getattr(module, "return_indices", False):
        return None
    return _adaptive(int(type(module).__name__[-2]), input, module.output_size)


ModuleRule = Callable[[Any, torch.Tensor], torch.Tensor | None]

_PRESERVING = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout, nn.Identity,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
    nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.Softmax,
    nn.LogSoftmax, nn.Softmin, nn.Threshold, nn.LocalResponseNorm,
)  # fmt: skip
_NORMS = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
    nn.InstanceNorm3d, nn.GroupNorm,
)  # fmt: skip

# Exact types: a subclass may override forward, so it runs on meta like any other module.
MODULE_RULES: dict[type, ModuleRule] = {
    **{cls: _preserving for cls in _PRESERVING},
    **{cls: _norm for cls in _NORMS},
    nn.LayerNorm: _layer_norm_module,
    nn.Linear: lambda m, x: _linear(x, m.weight, m.bias),
    nn.Embedding: lambda m, x: _embedding(x, m.weight, m.padding_idx, m.max_norm),
    nn.Upsample: lambda m, x: _interpolate(
        x, m.size, m.scale_factor, m.mode, m.align_corners, m.recompute_scale_factor
    ),
    **{
        cls: _conv
        for cls in (
            nn.Conv1d,
            nn.Conv2d,
            nn.Conv3d,
            nn.ConvTranspose1d,
            nn.ConvTranspose2d,
            nn.ConvTranspose3d,
        )
    },
    **{
        cls: _pool_module
        for cls in (
            nn.MaxPool1d,
            nn.MaxPool2d,
            nn.MaxPool3d,
            nn.AvgPool1d,
            nn.AvgPool2d,
            nn.AvgPool3d,
        )
    },
    **{
        cls: _adaptive_module
        for cls in (
            nn.AdaptiveAvgPool1d,
            nn.AdaptiveAvgPool2d,
            nn.AdaptiveAvgPool3d,
            nn.AdaptiveMaxPool1d,
            nn.AdaptiveMaxPool2d,
            nn.AdaptiveMaxPool3d,
        )
    },
}


def _module_rule(module: nn.Module) -> ModuleRule | None:
    rule = MODULE_RULES.get(type(module))
    return None if rule is None or "forward" in module.__dict__ else rule


_SOFTMAX = _bound(F.softmax)
_ACTIVATIONS = (
    F.relu,
    F.gelu,
    F.silu,
    F.leaky_relu,
    F.dropout,
    F.softmax,
    F.log_softmax,
    F.normalize,
)

FUNCTION_RULES: dict[Any, Callable[..., torch.Tensor | None]] = {
    **{fn: _bound(fn) for fn in _ACTIVATIONS},
    **{fn: _same for fn in (torch.sigmoid, torch.tanh, torch.exp, torch.sqrt)},
    **{
        fn: _binary(fn)
        for fn in (
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
    },
    **{
        fn: _reduce(name)
        for fn, name in (
            (torch.mean, "mean"),
            (torch.sum, "sum"),
            (torch.amax, "amax"),
            (torch.amin, "amin"),
        )
    },
    operator.matmul: _matmul,
    torch.matmul: _matmul,
    torch.where: _where,
    torch.cat: _cat,
    torch.stack: _stack,
    torch.arange: _arange,
    torch.zeros_like: _like,
    torch.ones_like: _like,
    F.linear: _linear,
    F.embedding: _embedding,
    F.layer_norm: _layer_norm,
    F.scaled_dot_product_attention: _attention,
    F.interpolate: _interpolate,
    F.adaptive_avg_pool2d: lambda input, output_size: _adaptive(2, input, output_size),
    F.avg_pool2d: _avg_pool2d,
    F.max_pool2d: _max_pool2d,
}

# Tensor methods, by name, called with the tensor first.
METHOD_RULES: dict[str, Callable[..., torch.Tensor | None]] = {
    **{name: _same for name in ("exp", "sqrt", "abs", "relu", "sigmoid", "tanh")},
    "mean": _reduce("mean"),
    "sum": _reduce("sum"),
    "softmax": lambda self, dim, dtype=None: (
        None if _dim(dim, self.dim()) is None else _SOFTMAX(self, dim, dtype=dtype)
    ),
    "pow": lambda self, exponent: _binary(operator.pow)(self, exponent),
    "masked_fill": _masked_fill,
    "repeat": _repeat,
    "argmax": _argmax,
}
