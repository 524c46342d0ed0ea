"""Shape rules for convolution, pooling and interpolation (see `dsl.torchlib.shape_rules`)."""

from __future__ import annotations

import math
from typing import Any

import torch

from dsl.torchlib.nn_private import ConvNd
from dsl.torchlib.shape_rules_common import Shape, float_meta, int_tuple, meta_empty

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


def conv(module: ConvNd, input: torch.Tensor) -> torch.Tensor | None:
    n = len(module.kernel_size)
    sizes = _spatial(input, n)
    weight = module.weight
    if sizes is None or not float_meta(input) or input.dtype != weight.dtype or not weight.is_meta:
        return None
    if input.shape[-n - 1] != module.in_channels:
        return None
    if module.transposed:
        if module.output_padding and any(
            op >= max(s, d)
            for op, s, d in zip(module.output_padding, module.stride, module.dilation, strict=True)
        ):
            return None
        padding: Any = module.padding if isinstance(module.padding, tuple) else (0,) * n
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
    return meta_empty((*input.shape[: -n - 1], module.out_channels, *out), input.dtype)


def pool(
    n: int,
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> torch.Tensor | None:
    sizes = _spatial(input, n) if float_meta(input) else None
    kernel = int_tuple(kernel_size, n)
    strides = kernel if stride is None or stride == [] else int_tuple(stride, n)
    pads, dilations = int_tuple(padding, n), int_tuple(dilation, n)
    if (
        sizes is None
        or kernel is None
        or strides is None
        or pads is None
        or dilations is None
        or not isinstance(ceil_mode, bool)
    ):
        return None
    if min(kernel + strides + dilations) <= 0 or any(
        2 * p > k or size < k for p, k, size in zip(pads, kernel, sizes, strict=True)
    ):
        return None  # some of torch's pools refuse an input smaller than the window, padding or not
    out = [
        _window(*args, ceil_mode)
        for args in zip(sizes, kernel, strides, pads, dilations, strict=True)
    ]
    if min(out) <= 0:
        return None
    return meta_empty((*input.shape[:-n], *out), input.dtype)


def max_pool2d(
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
        else pool(2, input, kernel_size, stride, padding, dilation, ceil_mode)
    )


def avg_pool2d(
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
        else pool(2, input, kernel_size, stride, padding, 1, ceil_mode)
    )


def adaptive(n: int, input: Any, output_size: Any) -> torch.Tensor | None:
    sizes = _spatial(input, n) if float_meta(input) else None
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
    return meta_empty((*input.shape[:-n], *out), input.dtype)


_INTERPOLATE_MODES = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


def interpolate(
    input: Any,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> torch.Tensor | None:
    if (
        not float_meta(input)
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
        out = int_tuple(size, n)
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
    return meta_empty((*input.shape[:2], *out), input.dtype)
